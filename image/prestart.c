/*
 * prestart.c: start a boot's plain services while Node starts.
 *
 * Stage 1 and the supervisor are one Node process; under emulation Node takes most of a
 * second to start, and runit's own stage 1 (a shell script) a few hundredths.  The image
 * builder (image/prestart.ts) writes a plan, /etc/runit-ts/prestart, when the image's
 * stage 1 is work that needs no decision (mounts, the host name, kernel modules in an
 * order known at build time, lo, the random seed: no fstab, not a Debian system) and
 * names the services that need nothing of the supervisor to start: a directory holding
 * no more than ./run, ./finish, ./log and ./supervise (no down file, no dependencies, no
 * readiness protocol, no custom control).  PID 1's stage 1 child carries the plan out
 * here, just before it executes stage 1: that stage 1 work first, then each service's
 * ./run started as the supervisor would start it (in its directory, in a session of its
 * own, with the supervisor's environment and descriptors, its stdout into the log pipe).
 * Stage 1 is then exec'd in this same process, so the services are its children: the
 * supervisor adopts them (src/lib/prestart.ts) from RUNIT_TS_PRESTART, a line a service:
 * "DIR PID RFD WFD REALTIME_US MONOTONIC_NS" (the log pipe's ends stay open across the
 * exec; the output waits in the pipe for the logger).  Stage 1 does its work again (it
 * is all idempotent) and the supervisor starts whatever was not started here.
 *
 * Nothing here decides: each line is done as written.  When the system no longer is what
 * the plan was made for, nothing is started (a check line fails) or that service is not
 * (its directory holds more than the plan allows), and the boot goes on as without one.
 *
 * Plan lines (fields split at single spaces; the builder writes no path with a space):
 *   unless-env NAME                  no prestart when NAME is set (a runlevel asked for)
 *   absent PATH                      no prestart when PATH exists
 *   same PATH MTIME                  no prestart unless PATH's mtime is MTIME (seconds)
 *   scan LINK DIR                    no prestart unless LINK resolves to DIR
 *   only NAME...                     what a service directory may hold
 *   mount SRC TARGET TYPE FLAGS DATA as stage 1 ("-": no data); EBUSY is no error
 *   hostname FILE DEFAULT            sethostname(FILE's first line, else DEFAULT)
 *   module PATH                      finit_module(PATH) (the builder orders them)
 *   ifup NAME                        IFF_UP on the interface
 *   seed FILE                        FILE's bytes written to /dev/urandom
 *   path VALUE                       the services' PATH (stage 2's)
 *   service LINK LOG                 start LINK's directory's ./run; LOG 1: a log pipe
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <dirent.h>

#ifndef PLAN  /* test/host/prestart.test.ts builds this file with a plan of its own */
#define PLAN      "/etc/runit-ts/prestart"
#endif
#define PLAN_MAX  65536
#define MAX_SVC   256
#define MAX_WORDS 16

extern char **environ;

static const char *path_env;   /* "PATH=..." for the services */
static int pipe_fds[2 * MAX_SVC]; /* the log pipes' ends, kept for the supervisor */
static int npipe_fds;

/* Split s at single spaces into at most MAX_WORDS words; returns how many. */
static int words(char *s, char **w)
{
	int n = 0;
	while (n < MAX_WORDS) {
		w[n++] = s;
		s = strchr(s, ' ');
		if (!s) break;
		*s++ = 0;
	}
	return n;
}

static int mtime_is(const char *path, const char *mtime)
{
	struct stat st;
	return stat(path, &st) == 0 && st.st_mtime == strtoll(mtime, NULL, 10);
}

/* Read a small file into buf (NUL-terminated); -1 on failure. */
static ssize_t slurp(const char *path, char *buf, size_t size)
{
	ssize_t n, got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) return -1;
	while ((size_t)got < size - 1 && (n = read(fd, buf + got, size - 1 - got)) > 0) got += n;
	close(fd);
	buf[got] = 0;
	return got;
}

/* The checks: may the plan be carried out on this system as it is now? */
static int plan_holds(char *plan)
{
	char *line, *next, *w[MAX_WORDS], copy[PATH_MAX * 2 + 64], real[PATH_MAX];
	int n, ok = 1;

	for (line = plan; ok && line && *line; line = next) {
		next = strchr(line, '\n');
		if (next) *next++ = 0;
		if (strlen(line) < sizeof copy) {
			strcpy(copy, line);
			n = words(copy, w);
			if (!strcmp(w[0], "unless-env") && n == 2) {
				const char *v = getenv(w[1]);
				ok = !v || !*v;
			} else if (!strcmp(w[0], "absent") && n == 2) {
				ok = access(w[1], F_OK) == -1 && errno == ENOENT;
			} else if (!strcmp(w[0], "same") && n == 3) {
				ok = mtime_is(w[1], w[2]);
			} else if (!strcmp(w[0], "scan") && n == 3) {
				ok = realpath(w[1], real) && !strcmp(real, w[2]);
			}
		} else
			ok = 0;
		if (next) next[-1] = '\n';
	}
	return ok;
}

/* Does dir hold only names of the "only" line (w: that line's words)? */
static int holds_only(const char *dir, char **only, int nonly)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int i, ok = d != NULL;

	while (ok && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
		for (i = 0; i < nonly && strcmp(e->d_name, only[i]); i++) ;
		ok = i < nonly;
	}
	if (d) closedir(d);
	return ok;
}

/* Stage 1's work the services may rely on, as stage 1 does it (it does it again). */
static void stage1_line(char **w, int n)
{
	if (!strcmp(w[0], "mount") && n == 6) {
		mkdir(w[2], 0755);
		mount(w[1], w[2], w[3], strtoul(w[4], NULL, 10), strcmp(w[5], "-") ? w[5] : "");
	} else if (!strcmp(w[0], "hostname") && n == 3) {
		char name[HOST_NAME_MAX + 2];
		ssize_t len = slurp(w[1], name, sizeof name);
		if (len > 0) name[strcspn(name, "\r\n")] = 0;
		if (len <= 0 || !*name) snprintf(name, sizeof name, "%s", w[2]);
		sethostname(name, strlen(name));
	} else if (!strcmp(w[0], "module") && n == 2) {
		int fd = open(w[1], O_RDONLY | O_CLOEXEC);
		if (fd == -1) return;
		syscall(SYS_finit_module, fd, "", 0);
		close(fd);
	} else if (!strcmp(w[0], "ifup") && n == 2) {
		struct ifreq ifr;
		int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		memset(&ifr, 0, sizeof ifr);
		snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", w[1]);
		if (s != -1 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
			ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
			ioctl(s, SIOCSIFFLAGS, &ifr);
		}
		if (s != -1) close(s);
	} else if (!strcmp(w[0], "seed") && n == 2) {
		char buf[4096];
		ssize_t len;
		int in = open(w[1], O_RDONLY | O_CLOEXEC), out;
		if (in == -1) return;
		if ((out = open("/dev/urandom", O_WRONLY | O_CLOEXEC)) != -1) {
			while ((len = read(in, buf, sizeof buf)) > 0)
				if (write(out, buf, len) != len) break;
			close(out);
		}
		close(in);
	} else if (!strcmp(w[0], "path") && n == 2) {
		static char path[PATH_MAX + 6];
		snprintf(path, sizeof path, "PATH=%s", w[1]);
		path_env = path;
	}
}

/* The supervisor's environment: ours without the handoff offer, with stage 2's PATH. */
static char **service_env(void)
{
	static char *env[512];
	size_t i, n = 0;
	for (i = 0; environ[i] && n < sizeof env / sizeof *env - 2; i++) {
		if (!strncmp(environ[i], "RUNIT_TS_HANDOFF=", 17)) continue;
		if (path_env && !strncmp(environ[i], "PATH=", 5)) continue;
		env[n++] = environ[i];
	}
	if (path_env) env[n++] = (char *)path_env;
	env[n] = NULL;
	return env;
}

/* Start dir/run as the supervisor would; append its line to out.  0 if not started. */
static int start_service(const char *dir, int log, char **env, char *out, size_t outsize)
{
	static char *const argv[] = { "./run", NULL };
	struct timespec real, mono;
	int p[2] = { -1, -1 }, con;
	pid_t pid;
	size_t len = strlen(out);

	/* its line must fit, or it would run unsupervised */
	if (len + strlen(dir) + 80 > outsize) return 0;
	if (log && pipe2(p, O_CLOEXEC) == -1) return 0;
	clock_gettime(CLOCK_REALTIME, &real);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	pid = fork();
	if (pid == 0) {
		/* stage 2's descriptors: stdin the console for writing (stages/stage1.ts's
		 * handoff), stdout the log pipe, stderr the console; a session of its own */
		if ((con = open("/dev/console", O_WRONLY | O_NOCTTY | O_APPEND)) != -1 && con != 0) {
			dup2(con, 0);
			close(con);
		}
		if (log) dup2(p[1], 1);
		setsid();
		if (chdir(dir) == 0) execve("./run", argv, env);
		_exit(111);  /* the supervisor sees it end, as it would see its own child fail */
	}
	if (pid == -1) {
		if (log) { close(p[0]); close(p[1]); }
		return 0;
	}
	if (log) {  /* close-on-exec until every service is started (prestart()) */
		pipe_fds[npipe_fds++] = p[0];
		pipe_fds[npipe_fds++] = p[1];
	}
	snprintf(out + len, outsize - len, "%s%s %d %d %d %lld %lld", len ? "\n" : "", dir, (int)pid, p[0], p[1],
		(long long)real.tv_sec * 1000000 + real.tv_nsec / 1000,
		(long long)mono.tv_sec * 1000000000 + mono.tv_nsec);
	return 1;
}

/* Carry out the plan, if there is one and it holds.  Errors only mean fewer services
 * started early: the supervisor starts the others itself. */
void prestart(void)
{
	static char plan[PLAN_MAX], only_line[1024], out[MAX_SVC * (PATH_MAX / 8)];
	char *line, *next, *w[MAX_WORDS], *only[MAX_WORDS], **env = NULL, dir[PATH_MAX], log[PATH_MAX + 4];
	struct stat st;
	int n, nonly = 0, started = 0, haslog;

	if (slurp(PLAN, plan, sizeof plan) <= 0 || !plan_holds(plan)) return;
	for (line = plan; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next) *next++ = 0;
		if (!strncmp(line, "only ", 5)) {
			snprintf(only_line, sizeof only_line, "%s", line + 5);
			nonly = words(only_line, only);
			continue;
		}
		n = words(line, w);
		if (strcmp(w[0], "service")) {
			stage1_line(w, n);
			continue;
		}
		/* the directory as the supervisor will name it, holding what the plan allows,
		 * with a log directory exactly when the plan says so */
		if (n != 3 || !nonly || started >= MAX_SVC || !realpath(w[1], dir) || !holds_only(dir, only, nonly)) continue;
		snprintf(log, sizeof log, "%s/log", dir);
		haslog = stat(log, &st) == 0 && S_ISDIR(st.st_mode);
		if (haslog != !strcmp(w[2], "1")) continue;
		if (!env) env = service_env();
		started += start_service(dir, haslog, env, out, sizeof out);
	}
	if (!started) return;
	/* the pipes' ends go to the supervisor through stage 1's exec */
	for (n = 0; n < npipe_fds; n++) fcntl(pipe_fds[n], F_SETFD, 0);
	setenv("RUNIT_TS_PRESTART", out, 1);
}
