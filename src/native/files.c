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
/* bytes a string write() takes in UTF-8, its NUL included (longer text: a Buffer) */
#define WRITE_TEXT 4096

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

/*
 * kind(path) -> the file type bits of stat(2)'s st_mode (S_IFDIR, S_IFREG, ...), or 0 when
 * nothing is there (ENOENT): what sv and runsv ask of most paths (is it a directory, is
 * ./down there), as one small integer; stat()'s five numbers in an array cost four times
 * the system call under emulation
 */
static napi_value js_kind(napi_env env, napi_callback_info info) {
  char path[PATHLEN];
  struct stat st;
  if (args(env, info, "p", path)) return NULL;
  if (stat(path, &st) == -1) return errno == ENOENT ? js_int(env, 0) : throw_errno(env, "stat");
  return js_int(env, st.st_mode & S_IFMT);
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

/*
 * write(fd, data): all of data (a Buffer, or a string of up to WRITE_TEXT - 1 bytes in
 * UTF-8) to fd, writing again after a short write or EINTR; throws an errno error
 * ("write"). sv's line for each service: Node's fs.writeSync checks its arguments and
 * converts the string in JavaScript, several times the system call under emulation.
 */
static napi_value js_write(napi_env env, napi_callback_info info) {
  int64_t fd;
  const char *data;
  size_t n;
  char text[WRITE_TEXT];
  if (args(env, info, "ix", &fd, &data, &n, text, sizeof text)) return NULL;
  while (n) {
    ssize_t w = write((int)fd, data, n);
    if (w == -1 && errno == EINTR) continue;
    if (w == -1) return throw_errno(env, "write");
    data += w;
    n -= (size_t)w;
  }
  return NULL;
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
 * readStatus(dir, rec) -> how many bytes one read() of up to 20 from dir/supervise/status
 * put in rec (a Buffer of 20), after opening dir/supervise/ok for writing without blocking
 * (and closing it) to learn whether a runsv serves dir: sv's look at a service, its three
 * opens, one read and closes in one call (sv runs in V8's interpreter, where each of Node's
 * fs calls costs more under emulation than the system call), into the caller's Buffer (one
 * made here cost as much as the calls). A failure throws with `step`: "ok" (ENXIO: no
 * runsv), "status" (its open) or "read". The caller decodes the record and says what failed.
 */
static napi_value js_read_status(napi_env env, napi_callback_info info) {
  char dir[PATHLEN], path[PATHLEN], unused[1];
  const char *out;
  size_t room;
  if (args(env, info, "px", dir, &out, &room, unused, sizeof unused)) return NULL;
  if (room < 20 || out == unused) {
    napi_throw_range_error(env, NULL, "readStatus: rec must be a Buffer of 20 bytes or more");
    return NULL;
  }
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
        /* the Buffer's own bytes: args() points at them, and nothing else runs meanwhile */
        n = read(fd, (char *)out, 20);
        int e = errno;
        close(fd);
        errno = e;
      }
    }
  }
  if (n >= 0) return js_int(env, n);
  napi_value err = errno_error(env, errno, failed), step;
  napi_create_string_utf8(env, failed, NAPI_AUTO_LENGTH, &step);
  napi_set_named_property(env, err, "step", step);
  napi_throw(env, err);
  return NULL;
}

/*
 * prepareSupervise(dirs, made, done): make the supervise/ directory of each service
 * directory, its control and ok FIFOs and its empty lock file (and the same in its log/
 * when that is a directory), on a thread of libuv's pool, from the last directory to the
 * first, while the supervisor sets the same services up from the first: the file system
 * work of a large directory's first pass shared between two cores, as runit's runsv
 * processes share it. Only what runsv makes anyway, and only in a supervise/ this call
 * made (one there already is left alone); the supervisor still makes and opens each file
 * itself, so whatever this did not get to, or failed at, is done and reported there. A
 * supervise/ this makes is marked in made (a Buffer of 2 bytes a directory: the service's,
 * its log's), so the supervisor can tell that it holds nothing older; the mark is set just
 * before the mkdir and cleared if it fails (an older supervise/ read as fresh in that
 * instant only has its first stats.json rewritten a little later). done() is called when
 * all are made; dirs are paths, as runsvdir joins them.
 */
struct prepare {
  napi_async_work work;
  napi_ref done, made;
  char **dirs;
  unsigned char *mark;
  size_t n;
};

/* supervise/ in base with its FIFOs and lock, if this makes supervise/; marks *mark first */
static void prepare_one(const char *base, unsigned char *mark) {
  char path[PATHLEN];
  static const char *const fifos[] = {"control", "ok"};
  if (snprintf(path, sizeof path, "%s/supervise", base) >= (int)sizeof path) return;
  /* marked before the mkdir, so that a supervisor whose own mkdir finds this one's sees it */
  __atomic_store_n(mark, 1, __ATOMIC_RELEASE);
  if (mkdir(path, 0700) == -1) {
    __atomic_store_n(mark, 0, __ATOMIC_RELEASE);
    return;
  }
  for (size_t i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/supervise/%s", base, fifos[i]);
    mkfifo(path, 0600);
  }
  /* the lock as runsv's open_append(O_CREAT) leaves it, made without a descriptor */
  snprintf(path, sizeof path, "%s/supervise/lock", base);
  mknod(path, S_IFREG | 0600, 0);
}

static void prepare_execute(napi_env env, void *data) {
  (void)env;
  struct prepare *p = data;
  char log[PATHLEN];
  struct stat st;
  for (size_t i = p->n; i-- > 0;) {
    prepare_one(p->dirs[i], &p->mark[2 * i]);
    if (snprintf(log, sizeof log, "%s/log", p->dirs[i]) < (int)sizeof log && stat(log, &st) == 0 && S_ISDIR(st.st_mode))
      prepare_one(log, &p->mark[2 * i + 1]);
  }
}

static void prepare_complete(napi_env env, napi_status status, void *data) {
  (void)status;
  struct prepare *p = data;
  napi_value fn, global;
  if (napi_get_reference_value(env, p->done, &fn) == napi_ok && napi_get_global(env, &global) == napi_ok)
    napi_call_function(env, global, fn, 0, NULL, NULL);
  napi_delete_reference(env, p->done);
  napi_delete_reference(env, p->made);
  napi_delete_async_work(env, p->work);
  free_vector(p->dirs);
  free(p);
}

static napi_value js_prepare_supervise(napi_env env, napi_callback_info info) {
  char **dirs, small[1];
  const char *mark;
  size_t len;
  napi_value done, argv[3], name;
  size_t argc = 3;
  if (args(env, info, "vxf", &dirs, &mark, &len, small, sizeof small, &done)) return NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  size_t n = 0;
  while (dirs[n]) n++;
  struct prepare *p = calloc(1, sizeof *p);
  bool is_buffer = false;
  napi_is_buffer(env, argv[1], &is_buffer);
  if (!is_buffer || len < 2 * n || !p) {
    free_vector(dirs);
    free(p);
    napi_throw_range_error(env, NULL, "prepareSupervise: argument 2: expected a Buffer of 2 bytes a directory");
    return NULL;
  }
  *p = (struct prepare){.dirs = dirs, .mark = (unsigned char *)mark, .n = n};
  napi_create_reference(env, done, 1, &p->done);
  napi_create_reference(env, argv[1], 1, &p->made);
  napi_create_string_utf8(env, "prepareSupervise", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, prepare_execute, prepare_complete, p, &p->work);
  napi_queue_async_work(env, p->work);
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
    FN("stat", js_stat),       FN("kind", js_kind),     FN("access", js_access), FN("open", js_open),   FN("write", js_write), FN("readFile", js_read_file),
    FN("fchmod", js_fchmod),   FN("mkdir", js_mkdir),   FN("mkfifo", js_mkfifo), FN("replaceFile", js_replace_file),
    FN("readStatus", js_read_status), FN("prepareSupervise", js_prepare_supervise),
    FN("flock", js_flock),     FN("pipe", js_pipe),     FN("dup", js_dup),     FN("setCloexec", js_set_cloexec),
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
}
