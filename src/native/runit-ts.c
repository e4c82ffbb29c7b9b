/*
 * runit-ts.node: the few Linux system calls Node does not expose, as a Node-API addon.
 * Every function is a thin wrapper: it checks its arguments, makes one system call and
 * throws an Error with .code (errno name) and .errno on failure. No policy lives here.
 * Node-API is ABI-stable, so the same source builds for x86_64 and aarch64 against
 * node-api-headers and loads into any Node >= 18 (our single executable included).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <math.h>
#include <net/if.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>

/* Throw Error(message) with code/errno set from errno; always returns NULL for convenience. */
static napi_value throw_errno(napi_env env, const char *what) {
  int e = errno;
  const char *name = strerrorname_np(e);
  char msg[512];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
  napi_value code, text, err, num;
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &err);
  napi_create_int32(env, -e, &num);
  napi_set_named_property(env, err, "errno", num);
  napi_set_named_property(env, err, "syscall", text);
  napi_throw(env, err);
  return NULL;
}

static napi_value make_int(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

/* Fetch up to 5 arguments; strings into caller buffers, ints via get_int. */
static size_t get_args(napi_env env, napi_callback_info info, napi_value *argv, size_t max) {
  size_t argc = max;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  return argc;
}

static int get_str(napi_env env, napi_value v, char *buf, size_t len) {
  size_t n;
  if (napi_get_value_string_utf8(env, v, buf, len, &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a string argument");
    return -1;
  }
  return 0;
}

static int get_int(napi_env env, napi_value v, int64_t *out) {
  if (napi_get_value_int64(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a number argument");
    return -1;
  }
  return 0;
}

#define PATHLEN 4096

/*
 * A path argument: the whole string (no silent truncation: ENAMETOOLONG) and no NUL in it
 * (which would name another file), as Node's fs checks.
 */
static int get_path(napi_env env, napi_value v, char *buf) {
  size_t n;
  if (napi_get_value_string_utf8(env, v, buf, PATHLEN, &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a path (string)");
    return -1;
  }
  if (n >= PATHLEN - 1) {
    errno = ENAMETOOLONG;
    throw_errno(env, "path");
    return -1;
  }
  if (strlen(buf) != n) {
    napi_throw_type_error(env, NULL, "a path must not contain a NUL byte");
    return -1;
  }
  return 0;
}

/*
 * The file calls of the supervisor's and svlogd's busy paths (setting up a service, a log
 * directory, looking at ./down or ./check): one system call each, where Node's fs runs its
 * argument checks and builds a Stats object or an Error with its stack in JavaScript, in
 * V8's interpreter in the supervisor, most of each call's time under emulation
 * (docs/performance.md). A missing file is an answer here (null or false), not an Error.
 */

/* stat(path) -> [mode, size, dev, ino, mtimeMs], or null when nothing is there (ENOENT) */
static napi_value js_stat(napi_env env, napi_callback_info info) {
  napi_value a[1], r, x;
  char path[PATHLEN];
  struct stat st;
  if (get_args(env, info, a, 1) < 1 || get_path(env, a[0], path)) return NULL;
  if (stat(path, &st) == -1) {
    if (errno != ENOENT) return throw_errno(env, "stat");
    napi_get_null(env, &r);
    return r;
  }
  double v[5] = {(double)st.st_mode, (double)st.st_size, (double)st.st_dev, (double)st.st_ino,
                 (double)st.st_mtim.tv_sec * 1e3 + (double)st.st_mtim.tv_nsec / 1e6};
  napi_create_array_with_length(env, 5, &r);
  for (uint32_t i = 0; i < 5; i++) {
    napi_create_double(env, v[i], &x);
    napi_set_element(env, r, i, x);
  }
  return r;
}

/* access(path, mode) -> true when access(2) allows it */
static napi_value js_access(napi_env env, napi_callback_info info) {
  napi_value a[2], r;
  char path[PATHLEN];
  int64_t mode;
  if (get_args(env, info, a, 2) < 2 || get_path(env, a[0], path) || get_int(env, a[1], &mode)) return NULL;
  napi_get_boolean(env, access(path, (int)mode) == 0, &r);
  return r;
}

/* open(path, flags, mode) -> fd; close-on-exec, as every fd Node (libuv) opens */
static napi_value js_open(napi_env env, napi_callback_info info) {
  napi_value a[3];
  char path[PATHLEN];
  int64_t flags, mode;
  if (get_args(env, info, a, 3) < 3 || get_path(env, a[0], path) || get_int(env, a[1], &flags) || get_int(env, a[2], &mode)) return NULL;
  int fd = open(path, (int)flags | O_CLOEXEC, (mode_t)mode);
  if (fd == -1) return throw_errno(env, "open");
  return make_int(env, fd);
}

/* readFile(path) -> a Buffer of the whole file, or null when there is none (ENOENT) */
static napi_value js_read_file(napi_env env, napi_callback_info info) {
  napi_value a[1], r;
  char path[PATHLEN];
  if (get_args(env, info, a, 1) < 1 || get_path(env, a[0], path)) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    if (errno != ENOENT) return throw_errno(env, "open");
    napi_get_null(env, &r);
    return r;
  }
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      close(fd);
      errno = ENOMEM;
      return throw_errno(env, "read");
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n == -1 && errno == EINTR) continue;
    if (n == -1) {
      int e = errno;
      free(buf);
      close(fd);
      errno = e;
      return throw_errno(env, "read");
    }
    if (n == 0) break;
    len += (size_t)n;
    if (len == cap) {
      char *more = realloc(buf, cap * 2);
      if (!more) free(buf);
      buf = more;
      cap *= 2;
    }
  }
  close(fd);
  void *out;
  napi_create_buffer_copy(env, len, buf, &out, &r);
  free(buf);
  return r;
}

/* fchmod(fd, mode) */
static napi_value js_fchmod(napi_env env, napi_callback_info info) {
  napi_value a[2];
  int64_t fd, mode;
  if (get_args(env, info, a, 2) < 2 || get_int(env, a[0], &fd) || get_int(env, a[1], &mode)) return NULL;
  if (fchmod((int)fd, (mode_t)mode) == -1) return throw_errno(env, "fchmod");
  return NULL;
}

/* mkdir(path, mode) */
static napi_value js_mkdir(napi_env env, napi_callback_info info) {
  napi_value a[2];
  char path[PATHLEN];
  int64_t mode;
  if (get_args(env, info, a, 2) < 2 || get_path(env, a[0], path) || get_int(env, a[1], &mode)) return NULL;
  if (mkdir(path, (mode_t)mode) == -1) return throw_errno(env, "mkdir");
  return NULL;
}

/* mkfifo(path, mode) */
static napi_value js_mkfifo(napi_env env, napi_callback_info info) {
  napi_value a[2];
  char path[PATHLEN];
  int64_t mode;
  if (get_args(env, info, a, 2) < 2 || get_str(env, a[0], path, sizeof path) || get_int(env, a[1], &mode)) return NULL;
  if (mkfifo(path, (mode_t)mode) == -1) return throw_errno(env, "mkfifo");
  return NULL;
}

/*
 * replaceFile(tmp, path, data): write data (a Buffer or a short string) to tmp (created 0644 or truncated,
 * opened without blocking, as runsv opens its status files) and rename tmp over path, so
 * a reader sees the old file or the new one, never half of one. One call for what takes
 * four of Node's fs calls: the supervisor updates three files per state change.
 * A failure throws with `step`: "open" (opening or writing tmp) or "rename".
 */
static napi_value js_replace_file(napi_env env, napi_callback_info info) {
  napi_value a[3], step;
  char tmp[PATHLEN], path[PATHLEN], text[512];
  const char *data = text;
  size_t n;
  bool isbuf = false;
  if (get_args(env, info, a, 3) < 3 || get_str(env, a[0], tmp, sizeof tmp) || get_str(env, a[1], path, sizeof path)) return NULL;
  napi_is_buffer(env, a[2], &isbuf);
  if (isbuf) {
    void *p;
    napi_get_buffer_info(env, a[2], &p, &n);
    data = p;
  } else if (napi_get_value_string_utf8(env, a[2], text, sizeof text, &n) != napi_ok || n >= sizeof text - 1) {
    napi_throw_type_error(env, NULL, "expected a Buffer, or a string of less than 510 bytes");
    return NULL;
  }
  const char *failed = NULL;
  int fd = open(tmp, O_WRONLY | O_NONBLOCK | O_TRUNC | O_CREAT | O_CLOEXEC, 0644);
  if (fd == -1) failed = "open";
  else {
    ssize_t w = n ? write(fd, data, n) : 0;
    int e = errno;
    close(fd);
    if (w != (ssize_t)n) { errno = w < 0 ? e : EIO; failed = "open"; }
    else if (rename(tmp, path) == -1) failed = "rename";
  }
  if (!failed) return NULL;
  /* the errno error, taken back to add the step and thrown again */
  throw_errno(env, failed);
  napi_value err;
  napi_get_and_clear_last_exception(env, &err);
  napi_create_string_utf8(env, failed, NAPI_AUTO_LENGTH, &step);
  napi_set_named_property(env, err, "step", step);
  napi_throw(env, err);
  return NULL;
}

/* flock(fd, op) -> true, or false when LOCK_NB was given and the lock is held elsewhere */
static napi_value js_flock(napi_env env, napi_callback_info info) {
  napi_value a[2], r;
  int64_t fd, op;
  if (get_args(env, info, a, 2) < 2 || get_int(env, a[0], &fd) || get_int(env, a[1], &op)) return NULL;
  while (flock((int)fd, (int)op) == -1) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) { napi_get_boolean(env, false, &r); return r; }
    return throw_errno(env, "flock");
  }
  napi_get_boolean(env, true, &r);
  return r;
}

/* setsid() -> new session id */
static napi_value js_setsid(napi_env env, napi_callback_info info) {
  (void)info;
  pid_t s = setsid();
  if (s == -1) return throw_errno(env, "setsid");
  return make_int(env, s);
}

/* pipe() -> [readFd, writeFd], both close-on-exec (children get them only through stdio) */
static napi_value js_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int p[2];
  napi_value arr;
  if (pipe2(p, O_CLOEXEC) == -1) return throw_errno(env, "pipe");
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, make_int(env, p[0]));
  napi_set_element(env, arr, 1, make_int(env, p[1]));
  return arr;
}

/* mount(source, target, fstype, flags, data) */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  napi_value a[5];
  char src[PATHLEN], tgt[PATHLEN], type[64], data[1024];
  int64_t flags;
  if (get_args(env, info, a, 5) < 5 || get_str(env, a[0], src, sizeof src) || get_str(env, a[1], tgt, sizeof tgt) ||
      get_str(env, a[2], type, sizeof type) || get_int(env, a[3], &flags) || get_str(env, a[4], data, sizeof data))
    return NULL;
  if (mount(src, tgt, type[0] ? type : NULL, (unsigned long)flags, data[0] ? data : NULL) == -1) return throw_errno(env, "mount");
  return NULL;
}

/* umount2(target, flags) */
static napi_value js_umount(napi_env env, napi_callback_info info) {
  napi_value a[2];
  char tgt[PATHLEN];
  int64_t flags;
  if (get_args(env, info, a, 2) < 2 || get_str(env, a[0], tgt, sizeof tgt) || get_int(env, a[1], &flags)) return NULL;
  if (umount2(tgt, (int)flags) == -1) return throw_errno(env, "umount");
  return NULL;
}

/* sethostname(name) */
static napi_value js_sethostname(napi_env env, napi_callback_info info) {
  napi_value a[1];
  char name[256];
  if (get_args(env, info, a, 1) < 1 || get_str(env, a[0], name, sizeof name)) return NULL;
  if (sethostname(name, strlen(name)) == -1) return throw_errno(env, "sethostname");
  return NULL;
}

/* finitModule(fd, params): load a kernel module from an open .ko file */
static napi_value js_finit_module(napi_env env, napi_callback_info info) {
  napi_value a[2];
  int64_t fd;
  char params[1024];
  if (get_args(env, info, a, 2) < 2 || get_int(env, a[0], &fd) || get_str(env, a[1], params, sizeof params)) return NULL;
  if (syscall(SYS_finit_module, (int)fd, params, 0) == -1) return throw_errno(env, "finit_module");
  return NULL;
}

/* ifUp(name): set IFF_UP on a network interface (SIOCGIFFLAGS/SIOCSIFFLAGS) */
static napi_value js_ifup(napi_env env, napi_callback_info info) {
  napi_value a[1];
  struct ifreq ifr;
  char name[IFNAMSIZ];
  if (get_args(env, info, a, 1) < 1 || get_str(env, a[0], name, sizeof name)) return NULL;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s == -1) return throw_errno(env, "socket");
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, IFNAMSIZ); /* get_str NUL-terminated it within IFNAMSIZ */
  if (ioctl(s, SIOCGIFFLAGS, &ifr) == -1) { int e = errno; close(s); errno = e; return throw_errno(env, "SIOCGIFFLAGS"); }
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) == -1) { int e = errno; close(s); errno = e; return throw_errno(env, "SIOCSIFFLAGS"); }
  close(s);
  return NULL;
}

/*
 * madviseDontneed(start, length) with BigInt addresses: drop this process's page-table
 * entries for a range. Only for read-only file mappings (the TS caller checks), where
 * the pages come back from the page cache on the next touch; never for writable ones.
 */
static napi_value js_madvise_dontneed(napi_env env, napi_callback_info info) {
  napi_value a[2];
  uint64_t start, len;
  bool lossless;
  if (get_args(env, info, a, 2) < 2 || napi_get_value_bigint_uint64(env, a[0], &start, &lossless) != napi_ok ||
      napi_get_value_bigint_uint64(env, a[1], &len, &lossless) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected two BigInt arguments");
    return NULL;
  }
  if (madvise((void *)(uintptr_t)start, (size_t)len, MADV_DONTNEED) == -1) return throw_errno(env, "madvise");
  return NULL;
}

/* sync() */
static napi_value js_sync(napi_env env, napi_callback_info info) {
  (void)env; (void)info;
  sync();
  return NULL;
}

/*
 * mallocTrim() -> whether memory went back to the system: malloc_trim(0) returns the free
 * pages of every malloc arena (not only the top of the heap) with MADV_DONTNEED. For the
 * long-running supervisor after its start, whose peak the C library would otherwise keep.
 */
static napi_value js_malloc_trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value r;
  napi_get_boolean(env, malloc_trim(0) == 1, &r);
  return r;
}

/* dup(fd) -> a new descriptor for the same open file, close-on-exec */
static napi_value js_dup(napi_env env, napi_callback_info info) {
  napi_value a[1];
  int64_t fd;
  if (get_args(env, info, a, 1) < 1 || get_int(env, a[0], &fd)) return NULL;
  int r = fcntl((int)fd, F_DUPFD_CLOEXEC, 0);
  if (r == -1) return throw_errno(env, "dup");
  return make_int(env, r);
}

/* setCloexec(fd, on): set or clear FD_CLOEXEC (a lock kept across exec must be inherited) */
static napi_value js_set_cloexec(napi_env env, napi_callback_info info) {
  napi_value a[2];
  int64_t fd;
  bool on;
  if (get_args(env, info, a, 2) < 2 || get_int(env, a[0], &fd) || napi_get_value_bool(env, a[1], &on) != napi_ok) return NULL;
  int flags = fcntl((int)fd, F_GETFD);
  if (flags == -1) return throw_errno(env, "fcntl");
  if (fcntl((int)fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC) == -1) return throw_errno(env, "fcntl");
  return NULL;
}

/* limits are doubles in JS: RLIM_INFINITY <-> Infinity */
static napi_value rlim_value(napi_env env, rlim_t v) {
  napi_value r;
  napi_create_double(env, v == RLIM_INFINITY ? (double)INFINITY : (double)v, &r);
  return r;
}

/* getrlimit(resource) -> [soft, hard] */
static napi_value js_getrlimit(napi_env env, napi_callback_info info) {
  napi_value a[1], arr;
  int64_t res;
  struct rlimit rl;
  if (get_args(env, info, a, 1) < 1 || get_int(env, a[0], &res)) return NULL;
  if (getrlimit((int)res, &rl) == -1) return throw_errno(env, "getrlimit");
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, rlim_value(env, rl.rlim_cur));
  napi_set_element(env, arr, 1, rlim_value(env, rl.rlim_max));
  return arr;
}

/* setrlimit(resource, soft, hard) */
static napi_value js_setrlimit(napi_env env, napi_callback_info info) {
  napi_value a[3];
  int64_t res;
  double cur, max;
  struct rlimit rl;
  if (get_args(env, info, a, 3) < 3 || get_int(env, a[0], &res) || napi_get_value_double(env, a[1], &cur) != napi_ok ||
      napi_get_value_double(env, a[2], &max) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (number, number, number)");
    return NULL;
  }
  rl.rlim_cur = cur == (double)INFINITY || cur >= 18446744073709551615.0 ? RLIM_INFINITY : (rlim_t)cur;
  rl.rlim_max = max == (double)INFINITY || max >= 18446744073709551615.0 ? RLIM_INFINITY : (rlim_t)max;
  if (setrlimit((int)res, &rl) == -1) return throw_errno(env, "setrlimit");
  return NULL;
}

/* chroot(path) */
static napi_value js_chroot(napi_env env, napi_callback_info info) {
  napi_value a[1];
  char path[PATHLEN];
  if (get_args(env, info, a, 1) < 1 || get_str(env, a[0], path, sizeof path)) return NULL;
  if (chroot(path) == -1) return throw_errno(env, "chroot");
  return NULL;
}

/* nice(inc) -> the new nice value (nice(2): -1 is only an error when errno is set) */
static napi_value js_nice(napi_env env, napi_callback_info info) {
  napi_value a[1];
  int64_t inc;
  if (get_args(env, info, a, 1) < 1 || get_int(env, a[0], &inc)) return NULL;
  errno = 0;
  int r = nice((int)inc);
  if (r == -1 && errno) return throw_errno(env, "nice");
  return make_int(env, r);
}

/* getpwnam(name) -> [uid, gid], or null if there is no such user (NSS, as the C library sees it) */
static napi_value js_getpwnam(napi_env env, napi_callback_info info) {
  napi_value a[1], arr, nul;
  char name[1024];
  if (get_args(env, info, a, 1) < 1 || get_str(env, a[0], name, sizeof name)) return NULL;
  errno = 0;
  struct passwd *pw = getpwnam(name);
  if (!pw) {
    if (errno && errno != ENOENT && errno != ESRCH && errno != EBADF && errno != EPERM) return throw_errno(env, "getpwnam");
    napi_get_null(env, &nul);
    return nul;
  }
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, make_int(env, pw->pw_uid));
  napi_set_element(env, arr, 1, make_int(env, pw->pw_gid));
  return arr;
}

/* getgrnam(name) -> gid, or null if there is no such group */
static napi_value js_getgrnam(napi_env env, napi_callback_info info) {
  napi_value a[1], nul;
  char name[1024];
  if (get_args(env, info, a, 1) < 1 || get_str(env, a[0], name, sizeof name)) return NULL;
  errno = 0;
  struct group *gr = getgrnam(name);
  if (!gr) {
    if (errno && errno != ENOENT && errno != ESRCH && errno != EBADF && errno != EPERM) return throw_errno(env, "getgrnam");
    napi_get_null(env, &nul);
    return nul;
  }
  return make_int(env, gr->gr_gid);
}

/* A JS array of strings as a NULL-terminated char* vector (malloc'ed; NULL on failure). */
static char **string_vector(napi_env env, napi_value arr) {
  uint32_t n = 0;
  if (napi_get_array_length(env, arr, &n) != napi_ok) return NULL;
  char **v = calloc(n + 1, sizeof(char *));
  if (!v) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    size_t len = 0;
    if (napi_get_element(env, arr, i, &el) != napi_ok || napi_get_value_string_utf8(env, el, NULL, 0, &len) != napi_ok ||
        !(v[i] = malloc(len + 1))) {
      for (uint32_t j = 0; j < i; j++) free(v[j]);
      free(v);
      return NULL;
    }
    napi_get_value_string_utf8(env, el, v[i], len + 1, &len);
  }
  return v;
}

static void free_vector(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
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
#define MAXLIMITS 16
static napi_value js_execve(napi_env env, napi_callback_info info) {
  napi_value a[4];
  char path[PATHLEN];
  size_t argc = get_args(env, info, a, 4);
  if (argc < 3 || get_str(env, a[0], path, sizeof path)) return NULL;
  int res[MAXLIMITS];
  rlim_t soft[MAXLIMITS];
  struct rlimit saved[MAXLIMITS];
  uint32_t nl = 0;
  if (argc > 3) {
    uint32_t n = 0;
    napi_valuetype ty;
    napi_typeof(env, a[3], &ty);
    if (ty != napi_undefined && napi_get_array_length(env, a[3], &n) != napi_ok) {
      napi_throw_type_error(env, NULL, "limits: expected an array");
      return NULL;
    }
    if (n / 2 > MAXLIMITS) {
      napi_throw_range_error(env, NULL, "limits: too many");
      return NULL;
    }
    for (uint32_t i = 0; i + 1 < n; i += 2) {
      napi_value r, v;
      double dr, dv;
      napi_get_element(env, a[3], i, &r);
      napi_get_element(env, a[3], i + 1, &v);
      if (napi_get_value_double(env, r, &dr) != napi_ok || napi_get_value_double(env, v, &dv) != napi_ok) {
        napi_throw_type_error(env, NULL, "limits: expected numbers");
        return NULL;
      }
      res[nl] = (int)dr;
      soft[nl] = dv == (double)INFINITY || dv >= 18446744073709551615.0 ? RLIM_INFINITY : (rlim_t)dv;
      nl++;
    }
  }
  char **argv = string_vector(env, a[1]);
  char **envp = string_vector(env, a[2]);
  if (!argv || !envp) {
    free_vector(argv);
    free_vector(envp);
    errno = ENOMEM;
    return throw_errno(env, "execve");
  }
  /* Node marks its standard descriptors close-on-exec: the new program must get them */
  for (int fd = 0; fd < 3; fd++) {
    int fl = fcntl(fd, F_GETFD);
    if (fl != -1 && (fl & FD_CLOEXEC)) fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
  }
  const char *failed = "execve";
  uint32_t set = 0;
  for (; set < nl; set++) {
    struct rlimit rl;
    if (getrlimit(res[set], &saved[set]) == -1) { failed = "getrlimit"; break; }
    rl = saved[set];
    rl.rlim_cur = soft[set];
    if (setrlimit(res[set], &rl) == -1) { failed = "setrlimit"; break; }
  }
  int e = 0;
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
  } else {
    e = errno;
  }
  while (set > 0) { set--; setrlimit(res[set], &saved[set]); }
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
  int err;    /* set by the child when it fails before or at execve (shared memory) */
};

extern char **environ;

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
  if (r->cwd[0] && chdir(r->cwd) == -1) goto fail;
  sigprocmask(SIG_SETMASK, &none, NULL);
  execve(r->path, r->argv, r->envp ? r->envp : environ);
fail:
  r->err = errno;
  _exit(127);
}

/*
 * spawn(path, argv, envp|null, cwd, fds, setsid) -> pid: start a program as fork + exec
 * would, without copying this process: clone(CLONE_VM|CLONE_VFORK) runs the child in our
 * memory (we wait, only this thread, until it has called execve), where fork() copies the
 * page tables of all of Node's memory (~0.5 ms and more, on each start of a service).
 * The child gets every signal at its default and none blocked, a session of its own if
 * setsid, fds[i] as its fd i (-1: /dev/null for 0-2), the working directory cwd ("": ours),
 * and envp (null: our environment). path is taken as execve takes it (relative to cwd).
 * A failure before or at execve is thrown (.code ENOENT, EACCES, ENOEXEC...) with the child
 * reaped. The caller reaps the child (reap()); Node does not know of it.
 */
#define SPAWN_STACK (64 * 1024)
#define MAXFDS 1024
static napi_value js_spawn(napi_env env, napi_callback_info info) {
  napi_value a[6], res = NULL;
  char path[PATHLEN], cwd[PATHLEN];
  int fds[MAXFDS];
  uint32_t nfds = 0;
  bool setsid_flag = false;
  napi_valuetype ty;
  if (get_args(env, info, a, 6) < 6 || get_str(env, a[0], path, sizeof path) || get_str(env, a[3], cwd, sizeof cwd)) return NULL;
  if (napi_get_array_length(env, a[4], &nfds) != napi_ok || nfds > MAXFDS || napi_get_value_bool(env, a[5], &setsid_flag) != napi_ok) {
    napi_throw_type_error(env, NULL, "spawn: expected (path, argv, envp|null, cwd, fds[], setsid)");
    return NULL;
  }
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value v;
    int64_t fd;
    napi_get_element(env, a[4], i, &v);
    if (get_int(env, v, &fd)) return NULL;
    fds[i] = fd < 0 ? -1 : (int)fd;
  }
  struct spawn_req r = { path, cwd, NULL, NULL, fds, (int)nfds, setsid_flag, 0 };
  r.argv = string_vector(env, a[1]);
  napi_typeof(env, a[2], &ty);
  if (ty != napi_null && ty != napi_undefined) r.envp = string_vector(env, a[2]);
  char *stack = mmap(NULL, SPAWN_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (!r.argv || (ty != napi_null && ty != napi_undefined && !r.envp) || stack == MAP_FAILED) {
    errno = ENOMEM;
    throw_errno(env, "spawn");
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
    errno = e;
    throw_errno(env, "spawn");
    goto out;
  }
  if (r.err) {
    int status;
    while (waitpid(pid, &status, 0) == -1 && errno == EINTR) {}
    errno = r.err;
    throw_errno(env, "spawn");
    goto out;
  }
  res = make_int(env, pid);
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
  napi_value a[1];
  int64_t pid;
  int status;
  if (get_args(env, info, a, 1) < 1 || get_int(env, a[0], &pid)) return NULL;
  pid_t r = waitpid((pid_t)pid, &status, WNOHANG);
  if (r < 0 && errno != ECHILD) return throw_errno(env, "waitpid");
  return make_int(env, r > 0 ? status : -1);
}

/*
 * notifySocket(path) -> fd: a non-blocking, close-on-exec AF_UNIX datagram socket bound
 * at path (a stale one is removed first), mode 0666 so a service that changed user can
 * still send; what systemd's sd_notify() sends to $NOTIFY_SOCKET. Node has no unix
 * datagram sockets, hence this.
 */
static napi_value js_notify_socket(napi_env env, napi_callback_info info) {
  napi_value a[1];
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (get_args(env, info, a, 1) < 1 || get_str(env, a[0], sa.sun_path, sizeof sa.sun_path)) return NULL;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd == -1) return throw_errno(env, "socket");
  unlink(sa.sun_path);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == -1 || chmod(sa.sun_path, 0666) == -1) {
    int e = errno;
    close(fd);
    errno = e;
    return throw_errno(env, "bind");
  }
  return make_int(env, fd);
}

/* recvDatagram(fd) -> the next datagram (at most 4096 bytes) as a string, or null when none is waiting */
static napi_value js_recv_datagram(napi_env env, napi_callback_info info) {
  napi_value a[1], r;
  int64_t fd;
  char buf[4096];
  if (get_args(env, info, a, 1) < 1 || get_int(env, a[0], &fd)) return NULL;
  ssize_t n = recv((int)fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n == -1) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      napi_get_null(env, &r);
      return r;
    }
    return throw_errno(env, "recv");
  }
  napi_create_string_utf8(env, buf, (size_t)n, &r);
  return r;
}

/*
 * watchFd(fd, onData): call onData(buffer) with what a read() of the fd gives each time it
 * becomes readable, onData(null, error) once on end of file or an error (the watch then
 * stops). A libuv poll handle on the fd: what runsv's poll() of its control FIFO and
 * svlogd's read() of its input are, without the stream machinery of a net.Socket (tens of
 * objects per pipe, made for every service and every logger at boot). The fd is made
 * non-blocking, as a net.Socket makes it; it stays the caller's. Returns
 * { close, pause, resume, unref }: pause() stops reading until resume() (svlogd while it
 * writes); unref() lets the process end while it watches.
 */
#define WATCH_READ 65536 /* a net.Socket's read size: one read per chunk of a busy logger */

typedef struct {
  uv_poll_t *poll;
  napi_env env;
  napi_ref cb;
  napi_async_context ctx;
  int fd;
  int paused;
} fd_watch;

static void watch_closed(uv_handle_t *h) {
  free(h);
}

/* stop polling; libuv frees the handle once closed (safe to close the fd after this) */
static void watch_unpoll(fd_watch *w) {
  uv_poll_stop(w->poll);
  uv_close((uv_handle_t *)w->poll, watch_closed);
  w->poll = NULL;
}

static void watch_stop(fd_watch *w) {
  if (w->poll == NULL) return;
  watch_unpoll(w);
  napi_delete_reference(w->env, w->cb);
  napi_async_destroy(w->env, w->ctx);
}

static void watch_call(fd_watch *w, napi_value *argv, size_t argc) {
  napi_value cb, recv;
  napi_get_reference_value(w->env, w->cb, &cb);
  napi_get_global(w->env, &recv); /* make_callback wants an object as `this` */
  /* make_callback: the promise jobs and nextTicks the callback queues run before libuv goes on */
  napi_make_callback(w->env, w->ctx, recv, cb, argc, argv, NULL);
}

static void watch_ready(uv_poll_t *h, int status, int events) {
  (void)events;
  fd_watch *w = uv_handle_get_data((uv_handle_t *)h);
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  char buf[WATCH_READ];
  ssize_t n = -1;
  int e = 0;
  if (status < 0) e = -status;
  else {
    do n = read(w->fd, buf, sizeof buf);
    while (n == -1 && errno == EINTR);
    if (n == -1) e = errno;
  }
  if (n > 0) {
    napi_value argv[1];
    napi_create_buffer_copy(env, (size_t)n, buf, NULL, &argv[0]);
    watch_call(w, argv, 1);
  } else if (e != EAGAIN && e != EWOULDBLOCK) {
    napi_value argv[2];
    napi_get_null(env, &argv[0]);
    if (n == 0) napi_get_null(env, &argv[1]);
    else {
      napi_value code, text;
      napi_create_string_utf8(env, strerrorname_np(e) ? strerrorname_np(e) : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
      napi_create_string_utf8(env, strerror(e), NAPI_AUTO_LENGTH, &text);
      napi_create_error(env, code, text, &argv[1]);
    }
    watch_call(w, argv, 2);
    watch_stop(w);
  }
  napi_close_handle_scope(env, scope);
}

/* the watch a method was called on (its `this`); NULL and a TypeError thrown if none */
static fd_watch *watch_this(napi_env env, napi_callback_info info) {
  napi_value self;
  fd_watch *w = NULL;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  if (napi_unwrap(env, self, (void **)&w) != napi_ok || w == NULL) {
    napi_throw_type_error(env, NULL, "watchFd: a method called without its watch");
    return NULL;
  }
  return w;
}

static napi_value watch_close(napi_env env, napi_callback_info info) {
  fd_watch *w = watch_this(env, info);
  if (w != NULL) watch_stop(w);
  return NULL;
}

static napi_value watch_pause(napi_env env, napi_callback_info info) {
  fd_watch *w = watch_this(env, info);
  if (w == NULL) return NULL;
  if (w->poll != NULL && !w->paused) uv_poll_stop(w->poll);
  w->paused = 1;
  return NULL;
}

/* as a net.Socket's unref(): the watch alone does not keep the process running */
static napi_value watch_unref(napi_env env, napi_callback_info info) {
  fd_watch *w = watch_this(env, info);
  if (w != NULL && w->poll != NULL) uv_unref((uv_handle_t *)w->poll);
  return NULL;
}

static napi_value watch_resume(napi_env env, napi_callback_info info) {
  fd_watch *w = watch_this(env, info);
  if (w == NULL) return NULL;
  /* level-triggered: what came while paused is told at once */
  if (w->poll != NULL && w->paused) uv_poll_start(w->poll, UV_READABLE, watch_ready);
  w->paused = 0;
  return NULL;
}

/* the object was collected: stop the poll if it was never closed (no JS call here) */
static void watch_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  fd_watch *w = data;
  if (w->poll != NULL) watch_unpoll(w);
  free(w);
}

static napi_value js_watch_fd(napi_env env, napi_callback_info info) {
  napi_value a[2], obj, name, resource;
  int64_t fd;
  uv_loop_t *loop;
  if (get_args(env, info, a, 2) < 2 || get_int(env, a[0], &fd)) return NULL;
  int fl = fcntl((int)fd, F_GETFL);
  if (fl == -1 || (!(fl & O_NONBLOCK) && fcntl((int)fd, F_SETFL, fl | O_NONBLOCK) == -1)) return throw_errno(env, "watchFd");
  fd_watch *w = calloc(1, sizeof *w);
  uv_poll_t *poll = malloc(sizeof *poll);
  if (w == NULL || poll == NULL || napi_get_uv_event_loop(env, &loop) != napi_ok) {
    free(w);
    free(poll);
    errno = ENOMEM;
    return throw_errno(env, "watchFd");
  }
  int r = uv_poll_init(loop, poll, (int)fd);
  if (r != 0) {
    /* not initialised (libuv checks the fd first): nothing of it in the loop */
    free(w);
    free(poll);
    errno = -r;
    return throw_errno(env, "watchFd");
  }
  r = uv_poll_start(poll, UV_READABLE, watch_ready);
  if (r != 0) {
    /* initialised: freed once libuv has closed it */
    free(w);
    uv_close((uv_handle_t *)poll, watch_closed);
    errno = -r;
    return throw_errno(env, "watchFd");
  }
  w->poll = poll;
  w->env = env;
  w->fd = (int)fd;
  uv_handle_set_data((uv_handle_t *)poll, w);
  napi_create_reference(env, a[1], 1, &w->cb);
  napi_create_string_utf8(env, "runit-ts:watchFd", NAPI_AUTO_LENGTH, &name);
  napi_create_object(env, &resource);
  napi_async_init(env, resource, name, &w->ctx);
  napi_property_descriptor d[] = {
    {"close", NULL, watch_close, NULL, NULL, NULL, napi_enumerable, NULL},
    {"pause", NULL, watch_pause, NULL, NULL, NULL, napi_enumerable, NULL},
    {"resume", NULL, watch_resume, NULL, NULL, NULL, napi_enumerable, NULL},
    {"unref", NULL, watch_unref, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_create_object(env, &obj);
  napi_define_properties(env, obj, sizeof d / sizeof d[0], d);
  /* the state lives as long as the object (after close(), only that is left); its
     methods find it through `this`, so a method taken off the object cannot outlive it */
  napi_wrap(env, obj, w, watch_free, NULL, NULL);
  return obj;
}

/*
 * v8Flags(flags): V8's SetFlagsFromString, which node:v8's setFlagsFromString calls, here
 * without loading node:v8 (its JavaScript and that of the modules it loads, compiled at
 * the supervisor's start, were a measurable part of the boot under emulation). The
 * function is V8's C++ API, exported by the node executable: found by its mangled name at
 * run time, so a Node without it is told (false) instead of failing to load the addon.
 * A static member function takes the platform's C calling convention.
 */
static napi_value js_v8_flags(napi_env env, napi_callback_info info) {
  static void (*set_flags)(const char *, size_t);
  static int looked;
  napi_value a[1], r;
  char flags[1024];
  size_t len;
  if (get_args(env, info, a, 1) < 1 || napi_get_value_string_utf8(env, a[0], flags, sizeof flags, &len) != napi_ok) return NULL;
  if (!looked) {
    looked = 1;
    *(void **)&set_flags = dlsym(RTLD_DEFAULT, "_ZN2v82V818SetFlagsFromStringEPKcm");
  }
  if (set_flags != NULL && len < sizeof flags - 1) set_flags(flags, len);
  napi_get_boolean(env, set_flags != NULL && len < sizeof flags - 1, &r);
  return r;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    {"mkfifo", NULL, js_mkfifo, NULL, NULL, NULL, napi_enumerable, NULL},
    {"stat", NULL, js_stat, NULL, NULL, NULL, napi_enumerable, NULL},
    {"access", NULL, js_access, NULL, NULL, NULL, napi_enumerable, NULL},
    {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"readFile", NULL, js_read_file, NULL, NULL, NULL, napi_enumerable, NULL},
    {"fchmod", NULL, js_fchmod, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mkdir", NULL, js_mkdir, NULL, NULL, NULL, napi_enumerable, NULL},
    {"v8Flags", NULL, js_v8_flags, NULL, NULL, NULL, napi_enumerable, NULL},
    {"replaceFile", NULL, js_replace_file, NULL, NULL, NULL, napi_enumerable, NULL},
    {"flock", NULL, js_flock, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setsid", NULL, js_setsid, NULL, NULL, NULL, napi_enumerable, NULL},
    {"pipe", NULL, js_pipe, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL},
    {"umount", NULL, js_umount, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sethostname", NULL, js_sethostname, NULL, NULL, NULL, napi_enumerable, NULL},
    {"finitModule", NULL, js_finit_module, NULL, NULL, NULL, napi_enumerable, NULL},
    {"ifUp", NULL, js_ifup, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sync", NULL, js_sync, NULL, NULL, NULL, napi_enumerable, NULL},
    {"madviseDontneed", NULL, js_madvise_dontneed, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mallocTrim", NULL, js_malloc_trim, NULL, NULL, NULL, napi_enumerable, NULL},
    {"dup", NULL, js_dup, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setCloexec", NULL, js_set_cloexec, NULL, NULL, NULL, napi_enumerable, NULL},
    {"getrlimit", NULL, js_getrlimit, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setrlimit", NULL, js_setrlimit, NULL, NULL, NULL, napi_enumerable, NULL},
    {"chroot", NULL, js_chroot, NULL, NULL, NULL, napi_enumerable, NULL},
    {"nice", NULL, js_nice, NULL, NULL, NULL, napi_enumerable, NULL},
    {"getpwnam", NULL, js_getpwnam, NULL, NULL, NULL, napi_enumerable, NULL},
    {"getgrnam", NULL, js_getgrnam, NULL, NULL, NULL, napi_enumerable, NULL},
    {"execve", NULL, js_execve, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setChildSubreaper", NULL, js_set_child_subreaper, NULL, NULL, NULL, napi_enumerable, NULL},
    {"reap", NULL, js_reap, NULL, NULL, NULL, napi_enumerable, NULL},
    {"notifySocket", NULL, js_notify_socket, NULL, NULL, NULL, napi_enumerable, NULL},
    {"recvDatagram", NULL, js_recv_datagram, NULL, NULL, NULL, napi_enumerable, NULL},
    {"spawn", NULL, js_spawn, NULL, NULL, NULL, napi_enumerable, NULL},
    {"watchFd", NULL, js_watch_fd, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
