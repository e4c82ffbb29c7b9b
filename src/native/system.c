/*
 * system.c: setting up the machine and what a program runs as. Stage 1 (init as PID 1)
 * mounts file systems, loads kernel modules, brings up the loopback interface, names the
 * host, and syncs at the end; chpst sets resource limits, a root directory, a nice value
 * and a user looked up through the C library. Node has none of these calls: no mount(),
 * finit_module(), interface flags, sethostname(), sync(), getrlimit()/setrlimit(),
 * chroot() or nice(), and no user or group lookup that sees NSS as a C program does.
 */
#include "napi-args.h"
#include <errno.h>
#include <grp.h>
#include <net/if.h>
#include <pwd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* bytes a mount's file system type and data, a module's parameters and a user's or
 * group's name may take, their NUL included */
#define FSTYPE 64
#define OPTIONS 1024
#define NAME 1024
/* bytes a host name may take, its NUL included (the kernel takes 64) */
#define HOSTNAME 256

/* mount(source, target, fstype, flags, data); fstype and data "": none */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  char src[PATHLEN], tgt[PATHLEN], type[FSTYPE], data[OPTIONS];
  int64_t flags;
  if (args(env, info, "ppsis", src, tgt, type, sizeof type, &flags, data, sizeof data)) return NULL;
  if (mount(src, tgt, type[0] ? type : NULL, (unsigned long)flags, data[0] ? data : NULL) == -1) return throw_errno(env, "mount");
  return NULL;
}

/* umount2(target, flags) */
static napi_value js_umount(napi_env env, napi_callback_info info) {
  char tgt[PATHLEN];
  int64_t flags;
  if (args(env, info, "pi", tgt, &flags)) return NULL;
  if (umount2(tgt, (int)flags) == -1) return throw_errno(env, "umount");
  return NULL;
}

/* sethostname(name) */
static napi_value js_sethostname(napi_env env, napi_callback_info info) {
  char name[HOSTNAME];
  if (args(env, info, "s", name, sizeof name)) return NULL;
  if (sethostname(name, strlen(name)) == -1) return throw_errno(env, "sethostname");
  return NULL;
}

/* finitModule(fd, params): load a kernel module from an open .ko file */
static napi_value js_finit_module(napi_env env, napi_callback_info info) {
  int64_t fd;
  char params[OPTIONS];
  if (args(env, info, "is", &fd, params, sizeof params)) return NULL;
  if (syscall(SYS_finit_module, (int)fd, params, 0) == -1) return throw_errno(env, "finit_module");
  return NULL;
}

/* ifUp(name): set IFF_UP on a network interface (SIOCGIFFLAGS/SIOCSIFFLAGS) */
static napi_value js_ifup(napi_env env, napi_callback_info info) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (args(env, info, "s", ifr.ifr_name, sizeof ifr.ifr_name)) return NULL;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s == -1) return throw_errno(env, "socket");
  const char *failed = NULL;
  if (ioctl(s, SIOCGIFFLAGS, &ifr) == -1) failed = "SIOCGIFFLAGS";
  else {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) == -1) failed = "SIOCSIFFLAGS";
  }
  int e = errno;
  close(s);
  errno = e;
  return failed ? throw_errno(env, failed) : NULL;
}

/* sync() */
static napi_value js_sync(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  sync();
  return NULL;
}

/* getrlimit(resource) -> [soft, hard], RLIM_INFINITY as Infinity */
static napi_value js_getrlimit(napi_env env, napi_callback_info info) {
  int64_t res;
  struct rlimit rl;
  if (args(env, info, "i", &res)) return NULL;
  if (getrlimit((int)res, &rl) == -1) return throw_errno(env, "getrlimit");
  double v[2] = {rlim_number(rl.rlim_cur), rlim_number(rl.rlim_max)};
  return js_numbers(env, v, 2);
}

/* setrlimit(resource, soft, hard), Infinity as RLIM_INFINITY */
static napi_value js_setrlimit(napi_env env, napi_callback_info info) {
  int64_t res;
  double cur, max;
  if (args(env, info, "idd", &res, &cur, &max)) return NULL;
  struct rlimit rl = {rlim_of(cur), rlim_of(max)};
  if (setrlimit((int)res, &rl) == -1) return throw_errno(env, "setrlimit");
  return NULL;
}

/* chroot(path) */
static napi_value js_chroot(napi_env env, napi_callback_info info) {
  char path[PATHLEN];
  if (args(env, info, "p", path)) return NULL;
  if (chroot(path) == -1) return throw_errno(env, "chroot");
  return NULL;
}

/* nice(inc) -> the new nice value (nice(2): -1 is only an error when errno is set) */
static napi_value js_nice(napi_env env, napi_callback_info info) {
  int64_t inc;
  if (args(env, info, "i", &inc)) return NULL;
  errno = 0;
  int r = nice((int)inc);
  if (r == -1 && errno) return throw_errno(env, "nice");
  return js_int(env, r);
}

/* true when a failed getpwnam()/getgrnam() only found no such name (the errnos it may
 * leave then, as getpwnam(3) lists them), false for a real error */
static bool not_found(void) {
  return !errno || errno == ENOENT || errno == ESRCH || errno == EBADF || errno == EPERM;
}

/* getpwnam(name) -> [uid, gid], or null if there is no such user (NSS, as the C library sees it) */
static napi_value js_getpwnam(napi_env env, napi_callback_info info) {
  char name[NAME];
  if (args(env, info, "s", name, sizeof name)) return NULL;
  errno = 0;
  struct passwd *pw = getpwnam(name);
  if (!pw) return not_found() ? js_null(env) : throw_errno(env, "getpwnam");
  double v[2] = {pw->pw_uid, pw->pw_gid};
  return js_numbers(env, v, 2);
}

/* getgrnam(name) -> gid, or null if there is no such group */
static napi_value js_getgrnam(napi_env env, napi_callback_info info) {
  char name[NAME];
  if (args(env, info, "s", name, sizeof name)) return NULL;
  errno = 0;
  struct group *gr = getgrnam(name);
  if (!gr) return not_found() ? js_null(env) : throw_errno(env, "getgrnam");
  return js_int(env, gr->gr_gid);
}

/* this file's system set-up functions, on the addon's exports */
void system_define(napi_env env, napi_value exports) {
  static const napi_property_descriptor d[] = {
    FN("mount", js_mount),         FN("umount", js_umount),       FN("sethostname", js_sethostname),
    FN("finitModule", js_finit_module), FN("ifUp", js_ifup),      FN("sync", js_sync),
    FN("getrlimit", js_getrlimit), FN("setrlimit", js_setrlimit), FN("chroot", js_chroot),
    FN("nice", js_nice),           FN("getpwnam", js_getpwnam),   FN("getgrnam", js_getgrnam),
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
}
