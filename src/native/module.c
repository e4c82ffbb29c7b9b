/*
 * module.c: runit-ts.node, the few Linux system calls Node does not expose, as a Node-API
 * addon; this file registers it. Every function is a thin wrapper: it checks its
 * arguments, makes its system call and throws an Error with .code (errno name) and .errno
 * on failure; no policy lives here. Node-API is ABI-stable, so the same sources build for
 * x86_64 and aarch64 against node-api-headers and load into any Node >= 18 (our single
 * executable included). The functions, by concern:
 *   files.c    file and descriptor calls of the busy paths
 *   process.c  spawning, exec, reaping, sd_notify's socket
 *   system.c   mounts, modules, network, host name, limits, root, nice, users
 *   watch.c    watchFd, a poll of a pipe in Node's event loop
 *   runtime.c  V8's flags, memory given back
 *   napi-args.c  what they share: arguments unpacked, errors made
 */
#include "napi-args.h"

/* The addon's exports: every concern's functions. */
static napi_value init(napi_env env, napi_value exports) {
  files_define(env, exports);
  process_define(env, exports);
  system_define(env, exports);
  watch_define(env, exports);
  runtime_define(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
