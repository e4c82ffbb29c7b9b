/*
 * process.c: processes: starting them, replacing this one, reaping them and hearing from
 * them. Node cannot start a program without copying itself (child_process forks in libuv,
 * copying the page tables of all of Node's memory on each start of a service) and without
 * its own stdio and signal handling in the child; it has no execve that fails as the
 * system call does, no setsid(), no waitpid() for a child it did not start, no child
 * subreaper, and no unix datagram socket for a service's sd_notify() messages.
 */
#include "napi-args.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* resource limits execve() sets at most ([resource, soft] pairs) */
#define MAXLIMITS 16
/* bytes of the stack spawn()'s child runs on until it execs */
#define SPAWN_STACK (64 * 1024)
/* descriptors spawn() gives a child at most */
#define MAXFDS 1024
/* bytes of a datagram recvDatagram() reads at most (an sd_notify message is far shorter) */
#define DATAGRAM 4096

extern char **environ;

/* setsid() -> new session id */
static napi_value js_setsid(napi_env env, napi_callback_info info) {
  (void)info;
  pid_t s = setsid();
  if (s == -1) return throw_errno(env, "setsid");
  return js_int(env, s);
}

/*
 * execve(path, argv, envp[, limits]): replace this process; returns only on failure
 * (throws, errno in .code, .syscall "execve" or "setrlimit"). Unlike process.execve it
 * fails like the system call (process.execve aborts the process on ENOENT/EACCES and
 * refuses closed stdio), and it gives the new program what a C exec would: fds 0-2
 * inherited (Node sets close-on-exec on them), SIGPIPE and SIGXFSZ at their defaults
 * (Node ignores them, and ignored signals survive exec), no signal blocked.
 * limits: flat [resource, soft, ...] set just before the exec and undone if it fails:
 * soft limits below what Node itself uses (address space, data, stack) must not be in
 * force while JavaScript runs.
 */
static napi_value js_execve(napi_env env, napi_callback_info info) {
  char path[PATHLEN], **argv, **envp;
  double limits[2 * MAXLIMITS];
  uint32_t n;
  if (args(env, info, "pvv?a", path, &argv, &envp, limits, (uint32_t)(2 * MAXLIMITS), &n)) return NULL;
  /* Node marks its standard descriptors close-on-exec: the new program must get them */
  for (int fd = 0; fd < 3; fd++) {
    int fl = fcntl(fd, F_GETFD);
    if (fl != -1 && (fl & FD_CLOEXEC)) fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
  }
  const char *failed = "execve";
  struct rlimit saved[MAXLIMITS];
  uint32_t nl = n / 2, set = 0;
  for (; set < nl; set++) {
    struct rlimit rl;
    int res = (int)limits[2 * set];
    if (getrlimit(res, &saved[set]) == -1) { failed = "getrlimit"; break; }
    rl = saved[set];
    rl.rlim_cur = rlim_of(limits[2 * set + 1]);
    if (setrlimit(res, &rl) == -1) { failed = "setrlimit"; break; }
  }
  int e = errno;
  if (set == nl) {
    struct sigaction dfl, pipe_old, xfsz_old;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, &pipe_old);
    sigaction(SIGXFSZ, &dfl, &xfsz_old);
    sigset_t none, old;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, &old);
    execve(path, argv, envp);
    e = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    sigaction(SIGPIPE, &pipe_old, NULL);
    sigaction(SIGXFSZ, &xfsz_old, NULL);
  }
  while (set > 0) {
    set--;
    setrlimit((int)limits[2 * set], &saved[set]);
  }
  free_vector(argv);
  free_vector(envp);
  errno = e;
  return throw_errno(env, failed);
}

/* What the child of js_spawn needs, prepared by the parent (the child may not allocate). */
struct spawn_req {
  const char *path, *cwd;
  char **argv, **envp;
  int *fds;   /* the child's fds 0..nfds-1: an fd of ours, or -1 (0-2: /dev/null; above: left alone) */
  int nfds;
  int setsid;
  int foreground; /* a process group of its own, the terminal's foreground one if fd 0 is ours */
  int err;    /* set by the child when it fails before or at execve (shared memory) */
};

/* The child, sharing our memory until it execs: async-signal-safe calls only. */
static int spawn_child(void *arg) {
  struct spawn_req *r = arg;
  /* the kernel's struct sigaction, all zero: SIG_DFL, no flags, empty mask (the same
   * layout on x86_64 and arm64: handler, flags, restorer, mask) */
  unsigned long kdfl[4] = { 0, 0, 0, 0 };
  sigset_t none;
  /* our handlers must never run here: every signal to its default, then unblock. The
   * system call itself, not sigaction(): glibc refuses the two signals it keeps for
   * itself (32, 33), and one of them ignored where we were started would stay ignored
   * in every service. */
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, kdfl, NULL, (size_t)8);
  sigemptyset(&none);
  if (r->setsid && setsid() == -1) goto fail;
  /* an fd to be moved that sits in the range being filled is first copied above it */
  for (int i = 0; i < r->nfds; i++) {
    int fd = r->fds[i];
    if (fd >= 0 && fd < r->nfds && fd != i && (r->fds[i] = fcntl(fd, F_DUPFD_CLOEXEC, r->nfds)) == -1) goto fail;
  }
  for (int i = 0; i < r->nfds; i++) {
    int fd = r->fds[i];
    if (fd == i) {
      /* inherited: fork would pass it as it is; a closed one stays closed */
      int fl = fcntl(fd, F_GETFD);
      if (fl != -1 && (fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) == -1) goto fail;
    } else if (fd >= 0) {
      if (dup2(fd, i) == -1) goto fail;
    } else if (i < 3) {
      int n = open("/dev/null", i == 0 ? O_RDONLY : O_RDWR);
      if (n == -1) goto fail;
      if (n != i) {
        if (dup2(n, i) == -1) goto fail;
        close(n);
      }
    }
  }
  /* a job of its own, as a shell makes one: its own process group and, when fd 0 is our
   * controlling terminal, the terminal's foreground group, so that the tty's signals (INT
   * from Ctrl-C, QUIT, WINCH on a window-size change) go to it and not to us. tcsetpgrp
   * from a background group is allowed here because SIGTTOU is blocked (the parent blocked
   * every signal); no terminal, or not ours (ENOTTY), leaves the terminal as it is. */
  if (r->foreground) {
    if (setpgid(0, 0) == -1) goto fail;
    tcsetpgrp(0, getpgrp());
  }
  if (r->cwd[0] && chdir(r->cwd) == -1) goto fail;
  sigprocmask(SIG_SETMASK, &none, NULL);
  execve(r->path, r->argv, r->envp ? r->envp : environ);
fail:
  r->err = errno;
  _exit(127);
}

/*
 * spawn(path, argv, envp|null, cwd, fds, setsid[, foreground]) -> pid: start a program as fork + exec
 * would, without copying this process: clone(CLONE_VM|CLONE_VFORK) runs the child in our
 * memory (we wait, only this thread, until it has called execve), where fork() copies the
 * page tables of all of Node's memory (~0.5 ms and more, on each start of a service).
 * The child gets every signal at its default and none blocked, a session of its own if
 * setsid, a process group of its own if foreground (and the terminal's foreground group
 * when fd 0 is our controlling terminal), fds[i] as its fd i (-1: /dev/null for 0-2), the
 * working directory cwd ("": ours), and envp (null: our environment). path is taken as execve takes it (relative to cwd).
 * A failure before or at execve is thrown (.code ENOENT, EACCES, ENOEXEC...) with the child
 * reaped; no child at all (clone failed: EAGAIN at a process limit, ENOMEM) is thrown with
 * .syscall "fork". The caller reaps the child (reap()); Node does not know of it.
 */
static napi_value js_spawn(napi_env env, napi_callback_info info) {
  napi_value res = NULL;
  char path[PATHLEN], cwd[PATHLEN];
  double given[MAXFDS];
  int fds[MAXFDS];
  uint32_t nfds;
  bool setsid_flag, foreground_flag;
  struct spawn_req r = { path, cwd, NULL, NULL, fds, 0, 0, 0, 0 };
  if (args(env, info, "pv?vpab?b", path, &r.argv, &r.envp, cwd, given, (uint32_t)MAXFDS, &nfds, &setsid_flag, &foreground_flag)) return NULL;
  for (uint32_t i = 0; i < nfds; i++) fds[i] = given[i] >= 0 && given[i] <= INT_MAX ? (int)given[i] : -1;
  r.nfds = (int)nfds;
  r.setsid = setsid_flag;
  r.foreground = foreground_flag && !setsid_flag; /* a new session has no terminal to hand over */
  char *stack = mmap(NULL, SPAWN_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    throw_errno(env, "fork");
    goto out;
  }
  /* no handler of ours may run in the child before it has reset them all */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = clone(spawn_child, stack + SPAWN_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &r);
  int e = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid == -1) {
    /* no process (EAGAIN: a process limit; ENOMEM): what a failed fork() is to runsv */
    errno = e;
    throw_errno(env, "fork");
    goto out;
  }
  if (r.err) {
    int status;
    while (waitpid(pid, &status, 0) == -1 && errno == EINTR) {}
    errno = r.err;
    throw_errno(env, "spawn");
    goto out;
  }
  res = js_int(env, pid);
out:
  if (stack != MAP_FAILED) munmap(stack, SPAWN_STACK);
  free_vector(r.argv);
  free_vector(r.envp);
  return res;
}

/* prctl(PR_SET_CHILD_SUBREAPER, 1): orphans of our descendants come to us, not PID 1
 * (the container init when it is not PID 1 itself). */
static napi_value js_set_child_subreaper(napi_env env, napi_callback_info info) {
  (void)info;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) return throw_errno(env, "prctl");
  return NULL;
}

/* waitpid(pid, WNOHANG) for one child we know is a zombie that Node did not start:
 * returns the raw wait status, or -1 when there was nothing to reap. */
static napi_value js_reap(napi_env env, napi_callback_info info) {
  int64_t pid;
  int status;
  if (args(env, info, "i", &pid)) return NULL;
  pid_t r = waitpid((pid_t)pid, &status, WNOHANG);
  if (r < 0 && errno != ECHILD) return throw_errno(env, "waitpid");
  return js_int(env, r > 0 ? status : -1);
}

/*
 * notifySocket(path, uid, gid) -> fd: a non-blocking, close-on-exec AF_UNIX datagram
 * socket at path (a stale one is removed first), mode 0600, owned by uid:gid (-1: ours):
 * what systemd's sd_notify() sends to $NOTIFY_SOCKET, and only its owner may send (the
 * service's user, when the service drops root). bind() gives a socket 0777 & ~umask, and
 * the umask is the whole process's: so it is bound in a fresh directory only we can enter
 * (mkdtemp, 0700) beside path, given its mode and owner there and renamed into place: at
 * path it has its final mode and owner from the first moment. Node has no unix datagram
 * sockets, hence this.
 */
static napi_value js_notify_socket(napi_env env, napi_callback_info info) {
  struct sockaddr_un sa;
  char path[sizeof sa.sun_path], dir[sizeof sa.sun_path];
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  int64_t uid, gid;
  if (args(env, info, "sii", path, sizeof path, &uid, &gid)) return NULL;
  const char *slash = strrchr(path, '/');
  size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
  /* DIR/.notifyXXXXXX and DIR/.notifyXXXXXX/s must fit where path fits */
  if (dlen + sizeof ".notifyXXXXXX/s" > sizeof sa.sun_path) {
    errno = ENAMETOOLONG;
    return throw_errno(env, "bind");
  }
  memcpy(dir, path, dlen);
  memcpy(dir + dlen, ".notifyXXXXXX", sizeof ".notifyXXXXXX");
  if (!mkdtemp(dir)) return throw_errno(env, "mkdtemp");
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s/s", dir);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const char *failed = "socket";
  if (fd != -1) {
    unlink(path);
    failed = bind(fd, (struct sockaddr *)&sa, sizeof sa) == -1 ? "bind"
           : chmod(sa.sun_path, 0600) == -1 ? "chmod"
           : chown(sa.sun_path, (uid_t)uid, (gid_t)gid) == -1 ? "chown"
           : rename(sa.sun_path, path) == -1 ? "rename" : NULL;
  }
  int e = errno;
  unlink(sa.sun_path);
  rmdir(dir);
  if (fd == -1 || failed) {
    if (fd != -1) close(fd);
    errno = e;
    return throw_errno(env, failed);
  }
  return js_int(env, fd);
}

/* recvDatagram(fd) -> the next datagram (at most DATAGRAM bytes) as a string, or null when none is waiting */
static napi_value js_recv_datagram(napi_env env, napi_callback_info info) {
  napi_value r;
  int64_t fd;
  char buf[DATAGRAM];
  if (args(env, info, "i", &fd)) return NULL;
  ssize_t n = recv((int)fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n == -1) return errno == EAGAIN || errno == EWOULDBLOCK ? js_null(env) : throw_errno(env, "recv");
  napi_create_string_utf8(env, buf, (size_t)n, &r);
  return r;
}

/* this file's process functions, on the addon's exports */
void process_define(napi_env env, napi_value exports) {
  static const napi_property_descriptor d[] = {
    FN("spawn", js_spawn), FN("execve", js_execve), FN("setsid", js_setsid), FN("reap", js_reap),
    FN("setChildSubreaper", js_set_child_subreaper), FN("notifySocket", js_notify_socket),
    FN("recvDatagram", js_recv_datagram),
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
}
