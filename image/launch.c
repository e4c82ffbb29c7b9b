/*
 * launch.c: the entry point of the overlay output (image/packers/overlay.ts), which adds
 * runit-ts to an existing image under one private directory, PREFIX (/opt/runit-ts):
 *
 *   PREFIX/bin/launch          this program, static (it needs no libc of the image)
 *   PREFIX/bin/<applet>        links to it: container-init, sv, chpst, svlogd, ...
 *   PREFIX/lib/<ld.so>         glibc's dynamic loader and the libraries runit-ts needs
 *   PREFIX/lib/runit-ts        the executable; PREFIX/lib/runit-ts.node its addon
 *
 * It runs the executable through the private loader, so neither the image's libraries
 * (musl, another glibc, none at all) nor its /lib64 are used or needed:
 *
 *   PREFIX/lib/<ld.so> --library-path PREFIX/lib --argv0 <applet> PREFIX/lib/runit-ts ARGS
 *
 * --argv0 keeps applet dispatch by name; --library-path is not an environment variable,
 * so the services the supervisor starts see the image's own loader and libraries only.
 * PREFIX is found from /proc/self/exe, so the directory can be moved as a whole.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#define LOADER "ld-linux-x86-64.so.2"
#elif defined(__aarch64__)
#define LOADER "ld-linux-aarch64.so.1"
#else
#error "runit-ts images are x86_64 or aarch64"
#endif

/* The 6 words put before the caller's arguments (loader, options, executable). */
#define EXTRA_ARGS 6
/* At most this many arguments are passed on (Linux's own limit is higher, but an applet's are few). */
#define MAX_ARGS 4096

/* buf = prefix + rest, or exit 111 naming the path when it does not fit. */
static void path(char *buf, size_t size, const char *prefix, const char *rest) {
  int n = snprintf(buf, size, "%s%s", prefix, rest);
  if (n < 0 || (size_t)n >= size) {
    fprintf(stderr, "runit-ts launch: path too long: %s%s\n", prefix, rest);
    _exit(111);
  }
}

int main(int argc, char **argv) {
  char self[PATH_MAX], loader[PATH_MAX], lib[PATH_MAX], exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) {
    fprintf(stderr, "runit-ts launch: readlink /proc/self/exe: %s\n", strerror(errno));
    return 111;
  }
  self[n] = 0;
  /* self is PREFIX/bin/launch: cut "/bin/launch" to get PREFIX */
  char *slash = strrchr(self, '/');
  if (slash) *slash = 0;
  slash = strrchr(self, '/');
  if (!slash) {
    fprintf(stderr, "runit-ts launch: cannot tell the prefix from %s\n", self);
    return 111;
  }
  *slash = 0;
  if (argc < 1 || argc > MAX_ARGS) {
    fprintf(stderr, "runit-ts launch: %d arguments (expected 1 to %d)\n", argc, MAX_ARGS);
    return 111;
  }
  path(lib, sizeof lib, self, "/lib");
  path(loader, sizeof loader, self, "/lib/" LOADER);
  path(exe, sizeof exe, self, "/lib/runit-ts");
  /* the applet is the name this was called by (a link's name), without its directory */
  const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  static char *args[MAX_ARGS + EXTRA_ARGS + 1];
  int i = 0;
  args[i++] = loader;
  args[i++] = "--library-path";
  args[i++] = lib;
  args[i++] = "--argv0";
  args[i++] = (char *)name;
  args[i++] = exe;
  for (int j = 1; j < argc; j++) args[i++] = argv[j];
  args[i] = NULL;
  execv(loader, args);
  fprintf(stderr, "runit-ts launch: exec %s: %s\n", loader, strerror(errno));
  return 111;
}
