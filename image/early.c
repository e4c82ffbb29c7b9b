/*
 * early.c: the exedisk image's first program (rdinit=/sbin/early), the fast
 * path of image/early-init.sh for an image whose root is the initramfs itself
 * and whose executable is on a read-only disk (image/packers/exedisk.ts).
 *
 * It does what the script does on that path, without a shell: mount /proc
 * and /dev, load the modules listed in /lib/modules/NAME (early.modules=NAME,
 * in dependency order, paths relative to /lib/modules), wait for each
 * early.mount=DEV:DIR[:FSTYPE[:OPTS]] device (rootwait[=SECONDS], default 30),
 * set its read-ahead (early.ra=KB), mount it, unmount /proc and /dev, and
 * exec init= (default /sbin/runit) as PID 1.  Under emulation a busybox
 * script spends ~0.15 s starting processes on this path (docs/performance.md).
 *
 * Anything else on the command line it does not handle (root=, early.shell),
 * and any failure, it hands to the script: /sbin/early-init runs then as PID 1
 * as if it had been started by the kernel (its rescue shell included), after
 * this program has undone its mounts.  A module that is already loaded, or
 * fails to load, is the script's business too: it loads with errors ignored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define SCRIPT "/sbin/early-init"
#define MAX_MOUNTS 8

static char cmdline[4096];
static char *mounts[MAX_MOUNTS];
static int nmounts;
static char *init = "/sbin/runit";
static char *modlist;
static long ra_kb = -1;
static long wait_s = 30;
static int proc_mounted, dev_mounted;
static char *mounted[MAX_MOUNTS]; /* the early.mount dirs mounted so far */
static int nmounted;

static void say(const char *m, const char *arg)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "early: %s%s%s (%s)\n", m,
			 arg ? " " : "", arg ? arg : "", strerror(errno));
	if (write(2, buf, n > 0 ? (size_t)n : 0) < 0) { /* nowhere to say it */ }
}

/* Undo and let the script do it all (it says what is wrong, or opens its
 * rescue shell). */
static void fallback(void)
{
	char *argv[] = { SCRIPT, NULL };
	while (nmounted > 0) umount(mounted[--nmounted]);
	if (dev_mounted) umount2("/dev", MNT_DETACH);
	if (proc_mounted) umount("/proc");
	execv(SCRIPT, argv);
	say("unable to start", SCRIPT);
	_exit(1);
}

/* The words of /proc/cmdline this path knows; 0 when one asks for the script. */
static int parse(void)
{
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n;
	char *w, *save;
	if (fd < 0) return 0;
	n = read(fd, cmdline, sizeof cmdline - 1);
	close(fd);
	if (n <= 0) return 0;
	cmdline[n] = 0;
	for (w = strtok_r(cmdline, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
		if (!strncmp(w, "root=", 5) || !strcmp(w, "early.shell")) return 0;
		else if (!strncmp(w, "early.mount=", 12) && nmounts < MAX_MOUNTS) mounts[nmounts++] = w + 12;
		else if (!strncmp(w, "early.modules=", 14)) modlist = w + 14;
		else if (!strncmp(w, "early.ra=", 9)) ra_kb = atol(w + 9);
		else if (!strcmp(w, "rootwait")) wait_s = 30;
		else if (!strncmp(w, "rootwait=", 9)) wait_s = atol(w + 9);
		else if (!strncmp(w, "init=", 5)) init = w + 5;
	}
	return nmounts > 0;
}

/* Load every module of /lib/modules/NAME, one path a line, in order. */
static int load_modules(void)
{
	static char list[8192];
	char path[512], *line, *save;
	int fd;
	ssize_t n;
	if (!modlist) return 1;
	snprintf(path, sizeof path, "/lib/modules/%s", modlist);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return 1; /* as the script: no list, nothing to load */
	n = read(fd, list, sizeof list - 1);
	close(fd);
	if (n < 0) return 0;
	list[n] = 0;
	for (line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int m;
		snprintf(path, sizeof path, "/lib/modules/%s", line);
		m = open(path, O_RDONLY | O_CLOEXEC);
		if (m < 0) { say("unable to open", path); return 0; }
		if (syscall(SYS_finit_module, m, "", 0) != 0 && errno != EEXIST) {
			say("unable to load", path);
			close(m);
			return 0;
		}
		close(m);
	}
	return 1;
}

/* DEV:DIR[:FSTYPE[:OPTS]] mounted read-only unless OPTS say otherwise. */
static int mount_one(char *spec)
{
	char *dev = spec, *dir, *type = NULL, *opts = "ro";
	unsigned long flags = 0;
	char data[256] = "";
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	long tries = wait_s * 100;
	struct stat st;
	char *o, *save;

	if (!(dir = strchr(dev, ':'))) return 0;
	*dir++ = 0;
	if ((type = strchr(dir, ':'))) {
		*type++ = 0;
		if ((o = strchr(type, ':'))) { *o++ = 0; if (*o) opts = o; }
		if (!*type) type = NULL;
	}
	if (!type) return 0; /* no FSTYPE: the script's mount finds it */
	/* mount(8)'s ro/rw; every other option goes to the file system */
	for (o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (!strcmp(o, "ro")) flags |= MS_RDONLY;
		else if (!strcmp(o, "rw")) flags &= ~MS_RDONLY;
		else {
			if (*data) strncat(data, ",", sizeof data - strlen(data) - 1);
			strncat(data, o, sizeof data - strlen(data) - 1);
		}
	}
	/* the device appears once its driver has probed it: look every 10 ms */
	while (stat(dev, &st) != 0 || !S_ISBLK(st.st_mode)) {
		if (wait_s > 0 && --tries < 0) { errno = ENODEV; say("no device", dev); return 0; }
		nanosleep(&tick, NULL);
	}
	if (ra_kb >= 0) {
		int fd = open(dev, O_RDONLY | O_CLOEXEC);
		/* the read-ahead in 512-byte sectors, as blockdev --setra */
		if (fd >= 0) { ioctl(fd, BLKRASET, (unsigned long)ra_kb * 2); close(fd); }
	}
	if (mount(dev, dir, type, flags, *data ? data : NULL) != 0) { say("unable to mount", dev); return 0; }
	mounted[nmounted++] = dir;
	return 1;
}

int main(void)
{
	char *argv[] = { init, NULL };
	int i;

	if (getpid() != 1) { errno = EPERM; say("not process 1:", "use the image's rdinit"); return 1; }
	if (mount("proc", "/proc", "proc", 0, NULL) != 0) fallback();
	proc_mounted = 1;
	if (!parse()) fallback();
	if (mount("devtmpfs", "/dev", "devtmpfs", 0, "mode=0755") != 0 && errno != EBUSY) fallback();
	dev_mounted = 1;
	if (!load_modules()) fallback();
	for (i = 0; i < nmounts; i++) {
		char *spec = strdup(mounts[i]);
		if (!spec || !mount_one(spec)) fallback();
	}
	/* as the script: stage 1 mounts its own /proc and /dev */
	umount("/proc");
	umount2("/dev", MNT_DETACH);
	execv(init, argv);
	say("unable to start", init);
	return 1;
}
