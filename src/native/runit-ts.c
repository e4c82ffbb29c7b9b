/*
 * runit-ts.node: the few Linux system calls Node does not expose, as a Node-API addon.
 * Every function is a thin wrapper: it checks its arguments, makes one system call and
 * throws an Error with .code (errno name) and .errno on failure. No policy lives here.
 * Node-API is ABI-stable, so the same source builds for x86_64 and aarch64 against
 * node-api-headers and loads into any Node >= 18 (our single executable included).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <node_api.h>

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

/* mkfifo(path, mode) */
static napi_value js_mkfifo(napi_env env, napi_callback_info info) {
  napi_value a[2];
  char path[PATHLEN];
  int64_t mode;
  if (get_args(env, info, a, 2) < 2 || get_str(env, a[0], path, sizeof path) || get_int(env, a[1], &mode)) return NULL;
  if (mkfifo(path, (mode_t)mode) == -1) return throw_errno(env, "mkfifo");
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

/* sync() */
static napi_value js_sync(napi_env env, napi_callback_info info) {
  (void)env; (void)info;
  sync();
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    {"mkfifo", NULL, js_mkfifo, NULL, NULL, NULL, napi_enumerable, NULL},
    {"flock", NULL, js_flock, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setsid", NULL, js_setsid, NULL, NULL, NULL, napi_enumerable, NULL},
    {"pipe", NULL, js_pipe, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL},
    {"umount", NULL, js_umount, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sethostname", NULL, js_sethostname, NULL, NULL, NULL, napi_enumerable, NULL},
    {"finitModule", NULL, js_finit_module, NULL, NULL, NULL, napi_enumerable, NULL},
    {"ifUp", NULL, js_ifup, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sync", NULL, js_sync, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
