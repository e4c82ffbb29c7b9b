/*
 * runit.c: process no 1 of runit-ts images.
 *
 * Implements the semantics of runit's runit(8) (see docs/runit.md,
 * "runit (PID 1)") with Debian's paths and Debian's SIGPWR handling.
 * Our own code, written from the documented behaviour.
 *
 *   stage 1  /etc/runit/1: one-time init; /dev/console as stdin.
 *            Crash or exit 100 => skip stage 2.  ("Crash" = killed by a
 *            signal, as documented and as runit >= 2.3.0 does; 2.1.2, which
 *            Debian ships, treats a crash like exit 0.)
 *   stage 2  /etc/runit/2: runs until shutdown, in its own session.
 *            Crash or exit 111 => SIGKILL its process group, wait 5 s, rerun.
 *            Any other exit => stage 3.
 *   stage 3  /etc/runit/3: shutdown tasks, in its own session.  Then SIGKILL
 *            every process, sync() (unless /etc/runit/nosync exists) and
 *            reboot if /run/runit.reboot is u+x, else power off / halt.
 *
 * Signals, honoured in stage 2 only (else "signals only work in stage 2."):
 *   CONT  if /run/runit.stopit is u+x: chmod it 0, TERM stage 2, give it 5 s,
 *         then KILL it; enter stage 3.  (runit-init 0 / 6 send this.)
 *   INT   (ctrl-alt-del) run /etc/runit/ctrlaltdel if u+x, wait, then as CONT.
 *   PWR   Debian: shut down without needing stopit, and power off even if
 *         /run/runit.reboot is u+x.  Remembered if it arrives in stage 1
 *         (acted on as soon as stage 2 runs) or stage 3.
 *   (Debian's runit also forwards ALRM to stage 2, for its runsvdir's
 *   forced rescan; we do not: ALRM is blocked like HUP, PIPE and TERM.)
 *
 * Handoff (runit-ts only): stage 1 is started with RUNIT_TS_HANDOFF=1 in
 * its environment.  A stage 1 that will go on as stage 2 itself (ours does
 * when /etc/runit/2 is the same executable, sparing a second program start)
 * makes itself a session leader, then sends USR1 to PID 1: USR1 from the
 * stage 1 process, in stage 1, ends stage 1 as a success and makes that
 * same process stage 2, with everything stage 2 gets.  USR1 from anyone
 * else, or in another stage, is ignored.
 *
 * Prestart (runit-ts only): before stage 1's exec, its child carries out the
 * image's prestart plan (prestart.c): the plain services start while Node does.
 *
 * Every child starts with an empty signal mask (runit's ctrlaltdel child,
 * and Debian's stages for SIGPWR, inherit blocked signals).
 *
 * Signal handling is synchronous: every signal PID 1 cares about stays
 * blocked and is taken with sigtimedwait(), so nothing can arrive between
 * "reap children" and "go to sleep".  Orphans are reaped at all times.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define STOPIT     "/run/runit.stopit"
#define REBOOT     "/run/runit.reboot"
#define NOSYNC     "/etc/runit/nosync"
#define CTRLALTDEL "/etc/runit/ctrlaltdel"
#define CONSOLE    "/dev/console"
#define HANDOFF    "RUNIT_TS_HANDOFF=1"

#define INFO    "- runit: "
#define WARNING "- runit: warning: "
#define FATAL   "- runit: fatal: "

static const char *const stage_path[3] =
	{ "/etc/runit/1", "/etc/runit/2", "/etc/runit/3" };

struct child { pid_t pid; int status; int done; };
void prestart(void);           /* prestart.c */
static struct child stage;     /* the current stage's process */
static struct child aux;       /* ctrlaltdel, or the final reboot child */
static sigset_t chld_set;      /* { SIGCHLD } */
static int pwr;                /* SIGPWR seen: shut down, then power off */
extern char **environ;

/* Never runs (the signals stay blocked); see main(). */
static void on_signal(int sig) { (void)sig; }

/* Print the strings (list ends with NULL) as one line to stderr. */
static void msg(const char *s, ...)
{
	char buf[512];
	size_t n = 0;
	ssize_t r;
	va_list ap;

	va_start(ap, s);
	for (; s; s = va_arg(ap, const char *))
		while (*s && n < sizeof buf - 1) buf[n++] = *s++;
	va_end(ap);
	buf[n++] = '\n';
	r = write(2, buf, n);
	(void)r;
}

/* djb-style error texts, as runit prints them. */
static const char *errstr(int e)
{
	return e == ENOENT ? "file does not exist" : e == EACCES ? "access denied"
		: e == ENOEXEC ? "exec format error" : e == ENOMEM ? "out of memory"
		: e == EAGAIN ? "temporary failure" : "unknown error";
}

/* Does path exist with the owner-execute bit set? (runit's flag files) */
static int is_ux(const char *path)
{
	struct stat s;
	return stat(path, &s) == 0 && (s.st_mode & S_IXUSR);
}

/* Console for writing.  O_NONBLOCK only for the open (a serial line without
 * carrier must not hang PID 1), then blocking again: children share this
 * file description and must not get EAGAIN on a busy console.  O_APPEND is
 * harmless on a tty and lets a plain file stand in for the console. */
static int console(void)
{
	int fd = open(CONSOLE, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_APPEND);
	if (fd != -1) fcntl(fd, F_SETFL, O_APPEND);
	return fd;
}

/* Point stderr at the console again, if there is one (runit does this on
 * every wake-up).  Without a console, keep the fds we were started with. */
static void reget_stderr(void)
{
	int fd = console();
	if (fd == -1) return;
	dup2(fd, 2);
	if (fd > 2) close(fd);
}

/* Reap every terminated child; remember the ones we are waiting for. */
static void reap(void)
{
	pid_t p;
	int ws;

	while ((p = waitpid(-1, &ws, WNOHANG)) > 0) {
		if (p == stage.pid && !stage.done) { stage.status = ws; stage.done = 1; }
		if (p == aux.pid && !aux.done) { aux.status = ws; aux.done = 1; }
	}
}

/* Reap until c is done (c NULL: never) or secs have passed (secs < 0:
 * no limit).  Only SIGCHLD is taken; other signals stay pending.
 * Returns whether c is done. */
static int wait_for(struct child *c, int secs)
{
	struct timespec now, end, left = { 14, 0 };

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += secs;
	for (;;) {
		reap();
		if (c && c->done) return 1;
		if (secs >= 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			left.tv_sec = end.tv_sec - now.tv_sec;
			left.tv_nsec = end.tv_nsec - now.tv_nsec;
			if (left.tv_nsec < 0) { left.tv_nsec += 1000000000; left.tv_sec--; }
			if (left.tv_sec < 0) return 0;
		}
		sigtimedwait(&chld_set, NULL, &left);
	}
}

/* Fork and exec path with no arguments and our environment.
 * st: 0 = stage 1, 1/2 = stages 2/3, -1 = ctrlaltdel. */
static void spawn(struct child *c, const char *path, int st)
{
	char *argv[2] = { (char *)path, NULL };
	sigset_t none;
	int fd;

	while ((c->pid = fork()) == -1) {
		msg(FATAL, "unable to fork for \"", path, "\" pausing: ", errstr(errno), NULL);
		sleep(5);
	}
	c->done = 0;
	if (c->pid) return;

	if (st == 0) {
		/* Stage 1 stays in PID 1's session, as in runit; it gets the
		 * console as stdin.  TIOCSCTTY is tried like runit does; Linux
		 * only grants it to a session leader, so it normally fails. */
		if ((fd = open(CONSOLE, O_RDWR)) != -1) {
			ioctl(fd, TIOCSCTTY, 0);
			dup2(fd, 0);
			if (fd > 2) close(fd);
		} else
			msg(WARNING, "unable to open " CONSOLE ": ", errstr(errno), NULL);
		putenv(HANDOFF);  /* offered to stage 1 only (see the top) */
	} else if (st > 0)
		setsid();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);  /* handlers reset at exec */
	if (st == 0) prestart();  /* the plan's services, while stage 1 starts (prestart.c) */
	msg(INFO, "enter stage: ", path, NULL);
	execve(path, argv, environ);
	msg(FATAL, "unable to start child: ", path, ": ", errstr(errno), NULL);
	_exit(0);  /* as runit: a missing stage counts as a successful one */
}

/* Stage st has exited: report it and return the stage to continue from
 * (the caller's loop adds 1). */
static int leave(int st)
{
	int ws = stage.status;
	int crashed = WIFSIGNALED(ws), code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 0;

	if (crashed || code)
		msg(WARNING, crashed ? "child crashed: " : "child failed: ", stage_path[st], NULL);
	if (st == 0 && (crashed || code == 100)) {
		msg(INFO, "leave stage: ", stage_path[0], NULL);
		msg(WARNING, "skipping stage 2...", NULL);
		return 1;
	}
	if (st == 1 && (crashed || code == 111)) {
		msg(WARNING, "killing all processes in stage 2...", NULL);
		kill(-stage.pid, SIGKILL);
		wait_for(NULL, 5);  /* sleep 5 s, reaping the killed group */
		msg(WARNING, "restarting.", NULL);
		return 0;
	}
	msg(INFO, "leave stage: ", stage_path[st], NULL);
	return st;
}

/* A signal arrived in stage 2: does it ask for shutdown? */
static int shutdown_requested(int sig)
{
	if (sig == SIGINT && is_ux(CTRLALTDEL)) {
		msg(INFO, "ctrl-alt-del request...", NULL);
		spawn(&aux, CTRLALTDEL, -1);
		wait_for(&aux, -1);
		if (WIFSIGNALED(aux.status)) msg(WARNING, "child crashed: ", CTRLALTDEL, NULL);
		msg(INFO, "leave stage: ", CTRLALTDEL, NULL);
		sig = SIGCONT;
	}
	return pwr || (sig == SIGCONT && is_ux(STOPIT));
}

/* Stop stage 2: TERM, up to 5 s grace (we wake as soon as it exits,
 * where runit polls once a second), then KILL. */
static void stop_stage2(void)
{
	chmod(STOPIT, 0);
	if (!stage.done) kill(stage.pid, SIGTERM);
	if (!wait_for(&stage, 5)) {
		msg(WARNING, "stage 2 not terminated, sending sigkill...", NULL);
		kill(stage.pid, SIGKILL);
		wait_for(&stage, -1);
	}
	msg(INFO, "leave stage: ", stage_path[1], NULL);
}

static void do_reboot(const char *what, int how)
{
	struct stat s;

	msg(INFO, what, NULL);
	if (stat(NOSYNC, &s) == -1) sync();
	reboot(how);
}

/* Final step, done in a child: when reboot(2) powers off or halts, Linux
 * ends the calling process with do_exit(); if that were PID 1 the kernel
 * would panic ("Attempted to kill init!"). */
static void halt_system(void)
{
	if (!pwr && is_ux(REBOOT)) {
		do_reboot("system reboot.", RB_AUTOBOOT);
		return;
	}
	do_reboot("power off...", RB_POWER_OFF);
	sleep(2);
	do_reboot("system halt.", RB_HALT_SYSTEM);
}

int main(void)
{
	/* The first five are taken with sigtimedwait(), the rest just stay
	 * blocked (and so ignored; children get them unblocked). */
	static const int sigs[] = { SIGCHLD, SIGCONT, SIGINT, SIGPWR, SIGUSR1,
				    SIGALRM, SIGHUP, SIGPIPE, SIGTERM };
	const struct timespec poll_timeout = { 14, 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t waitset, blockset;
	siginfo_t si;
	unsigned i;
	int st, sig, fd, container;

	if (getpid() != 1) {
		msg(FATAL, "must be run as process no 1.", NULL);
		return 111;
	}
	setsid();

	/* The waited-for signals also get a handler (never run, as they stay
	 * blocked) so the kernel can never count them as "ignored by init". */
	sigemptyset(&chld_set);
	sigaddset(&chld_set, SIGCHLD);
	sigemptyset(&waitset);
	sigemptyset(&blockset);
	for (i = 0; i < sizeof sigs / sizeof *sigs; i++) {
		sigaddset(&blockset, sigs[i]);
		if (i < 5) { sigaddset(&waitset, sigs[i]); sigaction(sigs[i], &sa, NULL); }
	}
	sigprocmask(SIG_BLOCK, &blockset, NULL);

	if ((fd = console()) != -1) {
		dup2(fd, 0); dup2(fd, 1); dup2(fd, 2);
		if (fd > 2) close(fd);
	}
	/* Ctrl-Alt-Del now sends us SIGINT.  This fails only when we are not
	 * the machine's init (a child PID namespace: EINVAL; no CAP_SYS_BOOT:
	 * EPERM), i.e. in a container. */
	container = reboot(RB_DISABLE_CAD) == -1;

	msg(INFO, "$Id: runit-ts $", ": booting.", NULL);

	for (st = 0; st < 3; st++) {
		spawn(&stage, stage_path[st], st);
		for (sig = 0;; sig = sigtimedwait(&waitset, &si, &poll_timeout)) {
			reap();
			reget_stderr();
			if (stage.done) { st = leave(st); break; }
			if (sig == SIGPWR) pwr = 1;
			if (sig == SIGUSR1) {
				if (st == 0 && si.si_pid == stage.pid) {
					msg(INFO, "leave stage: ", stage_path[0], NULL);
					msg(INFO, "enter stage: ", stage_path[1], NULL);
					st = 1;
				}
				sig = 0;  /* otherwise ignored */
			}
			if (st == 1) {
				if (pwr || (sig > 0 && shutdown_requested(sig))) {
					stop_stage2();
					break;
				}
			} else if (sig > 0 && sig != SIGCHLD)
				msg(WARNING, "signals only work in stage 2.", NULL);
		}
	}

	reget_stderr();
	msg(INFO, "sending KILL signal to all processes...", NULL);
	kill(-1, SIGKILL);
	aux.done = 0;
	aux.pid = fork();
	if (aux.pid <= 0) {
		halt_system();  /* also when fork failed, as runit does */
		if (aux.pid == 0) _exit(0);
	} else
		wait_for(&aux, -1);
	/* reboot(2) did not take: no CAP_SYS_BOOT.  runit would idle forever;
	 * a container's init may simply exit, so the container stops. */
	if (container) {
		msg(INFO, "exit.", NULL);
		return 0;
	}
	for (;;) wait_for(NULL, -1);
}
