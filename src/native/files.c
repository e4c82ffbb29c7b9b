/*
 * files.c: file and descriptor calls, one system call each. Node has them all in fs, but
 * each of its calls runs its argument checks and builds a Stats object or an Error with
 * its stack in JavaScript, in V8's interpreter in the supervisor, most of each call's time
 * under emulation (docs/performance.md); these are the busy paths of the supervisor and
 * svlogd (a service's or log directory's setup, ./down, ./check), where a missing file is
 * an answer (null or false), not an Error. Node has no flock(), no mkfifo(), no pipe()
 * outside a child process, no dup() and no way to set FD_CLOEXEC at all.
 */
#include "napi-args.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* bytes a string replaceFile() writes may take, its NUL included (status files are shorter) */
#define REPLACE_TEXT 512
/* bytes readFile() reads first; it doubles the buffer as the file needs */
#define READ_START 4096

/* stat(path) -> [mode, size, dev, ino, mtimeMs], or null when nothing is there (ENOENT) */
static napi_value js_stat(napi_env env, napi_callback_info info) {
  char path[PATHLEN];
  struct stat st;
  if (args(env, info, "p", path)) return NULL;
  if (stat(path, &st) == -1) return errno == ENOENT ? js_null(env) : throw_errno(env, "stat");
  double v[5] = {(double)st.st_mode, (double)st.st_size, (double)st.st_dev, (double)st.st_ino,
                 (double)st.st_mtim.tv_sec * 1e3 + (double)st.st_mtim.tv_nsec / 1e6};
  return js_numbers(env, v, 5);
}

/* access(path, mode) -> true when access(2) allows it */
static napi_value js_access(napi_env env, napi_callback_info info) {
  char path[PATHLEN];
  int64_t mode;
  if (args(env, info, "pi", path, &mode)) return NULL;
  return js_bool(env, access(path, (int)mode) == 0);
}

/* open(path, flags, mode) -> fd; close-on-exec, as every fd Node (libuv) opens */
static napi_value js_open(napi_env env, napi_callback_info info) {
  char path[PATHLEN];
  int64_t flags, mode;
  if (args(env, info, "pii", path, &flags, &mode)) return NULL;
  int fd = open(path, (int)flags | O_CLOEXEC, (mode_t)mode);
  if (fd == -1) return throw_errno(env, "open");
  return js_int(env, fd);
}

/* readFile(path) -> a Buffer of the whole file, or null when there is none (ENOENT) */
static napi_value js_read_file(napi_env env, napi_callback_info info) {
  char path[PATHLEN];
  napi_value r;
  if (args(env, info, "p", path)) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) return errno == ENOENT ? js_null(env) : throw_errno(env, "open");
  size_t cap = READ_START, len = 0;
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
  napi_create_buffer_copy(env, len, buf, NULL, &r);
  free(buf);
  return r;
}

/* fchmod(fd, mode) */
static napi_value js_fchmod(napi_env env, napi_callback_info info) {
  int64_t fd, mode;
  if (args(env, info, "ii", &fd, &mode)) return NULL;
  if (fchmod((int)fd, (mode_t)mode) == -1) return throw_errno(env, "fchmod");
  return NULL;
}

/* mkdir(path, mode) */
static napi_value js_mkdir(napi_env env, napi_callback_info info) {
  char path[PATHLEN];
  int64_t mode;
  if (args(env, info, "pi", path, &mode)) return NULL;
  if (mkdir(path, (mode_t)mode) == -1) return throw_errno(env, "mkdir");
  return NULL;
}

/* mkfifo(path, mode): runsv's supervise/control and supervise/ok */
static napi_value js_mkfifo(napi_env env, napi_callback_info info) {
  char path[PATHLEN];
  int64_t mode;
  if (args(env, info, "pi", path, &mode)) return NULL;
  if (mkfifo(path, (mode_t)mode) == -1) return throw_errno(env, "mkfifo");
  return NULL;
}

/*
 * replaceFile(tmp, path, data): write data (a Buffer or a short string) to tmp (created 0644
 * or truncated, opened without blocking, as runsv opens its status files) and rename tmp
 * over path, so a reader sees the old file or the new one, never half of one. One call for
 * what takes four of Node's fs calls: the supervisor updates three files per state change.
 * A failure throws with `step`: "open" (opening or writing tmp) or "rename".
 */
static napi_value js_replace_file(napi_env env, napi_callback_info info) {
  char tmp[PATHLEN], path[PATHLEN], text[REPLACE_TEXT];
  const char *data;
  size_t n;
  if (args(env, info, "ppx", tmp, path, &data, &n, text, sizeof text)) return NULL;
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
  napi_value err = errno_error(env, errno, failed), step;
  napi_create_string_utf8(env, failed, NAPI_AUTO_LENGTH, &step);
  napi_set_named_property(env, err, "step", step);
  napi_throw(env, err);
  return NULL;
}

/*
 * readStatus(dir) -> the bytes of one read() of up to 20 from dir/supervise/status, after
 * opening dir/supervise/ok for writing without blocking (and closing it) to learn whether a
 * runsv serves dir: sv's look at a service, its three opens, one read and closes in one
 * call (sv runs in V8's interpreter, where each of Node's fs calls costs more under
 * emulation than the system call). A failure throws with `step`: "ok" (ENXIO: no runsv),
 * "status" (its open) or "read". The caller decodes the record and says what failed.
 */
static napi_value js_read_status(napi_env env, napi_callback_info info) {
  char dir[PATHLEN], path[PATHLEN];
  unsigned char rec[20];
  napi_value r;
  if (args(env, info, "p", dir)) return NULL;
  const char *sep = dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", *failed = "ok";
  ssize_t n = -1;
  if (snprintf(path, sizeof path, "%s%ssupervise/ok", dir, sep) >= (int)sizeof path) errno = ENAMETOOLONG;
  else {
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd != -1) {
      close(fd);
      failed = "status";
      snprintf(path, sizeof path, "%s%ssupervise/status", dir, sep);
      fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd != -1) {
        failed = "read";
        n = read(fd, rec, sizeof rec);
        int e = errno;
        close(fd);
        errno = e;
      }
    }
  }
  if (n >= 0) {
    napi_create_buffer_copy(env, (size_t)n, rec, NULL, &r);
    return r;
  }
  napi_value err = errno_error(env, errno, failed), step;
  napi_create_string_utf8(env, failed, NAPI_AUTO_LENGTH, &step);
  napi_set_named_property(env, err, "step", step);
  napi_throw(env, err);
  return NULL;
}

/* flock(fd, op) -> true, or false when LOCK_NB was given and the lock is held elsewhere */
static napi_value js_flock(napi_env env, napi_callback_info info) {
  int64_t fd, op;
  if (args(env, info, "ii", &fd, &op)) return NULL;
  while (flock((int)fd, (int)op) == -1) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return js_bool(env, false);
    return throw_errno(env, "flock");
  }
  return js_bool(env, true);
}

/* pipe() -> [readFd, writeFd], both close-on-exec (children get them only through stdio) */
static napi_value js_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int p[2];
  if (pipe2(p, O_CLOEXEC) == -1) return throw_errno(env, "pipe");
  double v[2] = {p[0], p[1]};
  return js_numbers(env, v, 2);
}

/* dup(fd) -> a new descriptor for the same open file, close-on-exec */
static napi_value js_dup(napi_env env, napi_callback_info info) {
  int64_t fd;
  if (args(env, info, "i", &fd)) return NULL;
  int r = fcntl((int)fd, F_DUPFD_CLOEXEC, 0);
  if (r == -1) return throw_errno(env, "dup");
  return js_int(env, r);
}

/* setCloexec(fd, on): set or clear FD_CLOEXEC (a lock kept across exec must be inherited) */
static napi_value js_set_cloexec(napi_env env, napi_callback_info info) {
  int64_t fd;
  bool on;
  if (args(env, info, "ib", &fd, &on)) return NULL;
  int flags = fcntl((int)fd, F_GETFD);
  if (flags == -1) return throw_errno(env, "fcntl");
  if (fcntl((int)fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC) == -1) return throw_errno(env, "fcntl");
  return NULL;
}

/* this file's file and descriptor functions, on the addon's exports */
void files_define(napi_env env, napi_value exports) {
  static const napi_property_descriptor d[] = {
    FN("stat", js_stat),       FN("access", js_access), FN("open", js_open),   FN("readFile", js_read_file),
    FN("fchmod", js_fchmod),   FN("mkdir", js_mkdir),   FN("mkfifo", js_mkfifo), FN("replaceFile", js_replace_file),
    FN("readStatus", js_read_status),
    FN("flock", js_flock),     FN("pipe", js_pipe),     FN("dup", js_dup),     FN("setCloexec", js_set_cloexec),
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
}
