/*
 * runtime.c: this Node process's own engine and memory. V8's flags set at run time
 * without loading node:v8 (whose JavaScript, and that of the modules it loads, compiled at
 * the supervisor's start, was a measurable part of the boot under emulation); V8's heap
 * shrunk after the start (a low-memory notification); the C
 * library's free heap and the pages of read-only file mappings given back to the system,
 * for the long-running supervisor after its start. Node has no malloc_trim() or madvise().
 */
#include "napi-args.h"
#include <dlfcn.h>
#include <malloc.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* bytes the flags v8Flags() takes may be, their NUL included */
#define FLAGS 1024
/* V8's static v8::V8::SetFlagsFromString(const char *, size_t), by its mangled name */
#define SET_FLAGS_SYMBOL "_ZN2v82V818SetFlagsFromStringEPKcm"
/* V8's static v8::Isolate::GetCurrent() and v8::Isolate::LowMemoryNotification() (a member: `this` first) */
#define GET_ISOLATE_SYMBOL "_ZN2v87Isolate10GetCurrentEv"
#define LOW_MEMORY_SYMBOL "_ZN2v87Isolate21LowMemoryNotificationEv"

/*
 * v8Flags(flags) -> whether they were set: V8's SetFlagsFromString, which node:v8's
 * setFlagsFromString calls. The function is V8's C++ API, exported by the node executable:
 * found by its mangled name at run time, so a Node without it is told (false) instead of
 * failing to load the addon. A static member function takes the platform's C calling
 * convention.
 */
static napi_value js_v8_flags(napi_env env, napi_callback_info info) {
  static void (*set_flags)(const char *, size_t);
  static int looked;
  char flags[FLAGS];
  if (args(env, info, "s", flags, sizeof flags)) return NULL;
  if (!looked) {
    looked = 1;
    *(void **)&set_flags = dlsym(RTLD_DEFAULT, SET_FLAGS_SYMBOL);
  }
  if (set_flags != NULL) set_flags(flags, strlen(flags));
  return js_bool(env, set_flags != NULL);
}

/*
 * lowMemory() -> whether V8 was told: V8's Isolate::LowMemoryNotification, which collects
 * all garbage the way that reduces the footprint (the young generation's unused half and
 * V8's pooled pages given back), for the long-running supervisor once its start is over;
 * Node offers no call for it (a forced gc() does not shrink). Found by mangled name as
 * v8Flags() finds its function; a non-static member takes `this` as its first argument.
 */
static napi_value js_low_memory(napi_env env, napi_callback_info info) {
  static void *(*get_isolate)(void);
  static void (*low_memory)(void *);
  static int looked;
  (void)info;
  if (!looked) {
    looked = 1;
    *(void **)&get_isolate = dlsym(RTLD_DEFAULT, GET_ISOLATE_SYMBOL);
    *(void **)&low_memory = dlsym(RTLD_DEFAULT, LOW_MEMORY_SYMBOL);
  }
  void *isolate = get_isolate != NULL && low_memory != NULL ? get_isolate() : NULL;
  if (isolate != NULL) low_memory(isolate);
  return js_bool(env, isolate != NULL);
}

/*
 * mallocTrim() -> whether memory went back to the system: malloc_trim(0) returns the free
 * pages of every malloc arena (not only the top of the heap) with MADV_DONTNEED, where the
 * C library would otherwise keep the supervisor's peak of its start.
 */
static napi_value js_malloc_trim(napi_env env, napi_callback_info info) {
  (void)info;
  return js_bool(env, malloc_trim(0) == 1);
}

/*
 * madviseDontneed(start, length) with BigInt addresses: drop this process's page-table
 * entries for a range. Only for read-only file mappings (the TS caller checks), where
 * the pages come back from the page cache on the next touch; never for writable ones.
 */
static napi_value js_madvise_dontneed(napi_env env, napi_callback_info info) {
  uint64_t start, len;
  if (args(env, info, "nn", &start, &len)) return NULL;
  if (madvise((void *)(uintptr_t)start, (size_t)len, MADV_DONTNEED) == -1) return throw_errno(env, "madvise");
  return NULL;
}

/*
 * exit(code): _exit(2), at once. For a process whose work is done (src/lib/native.ts,
 * quickExit): Node's own exit first tears itself down (its threads joined, V8's heap and
 * isolate freed, the C library's exit handlers run), 3 ms more than a process that is just
 * killed, on the host; none of it is seen once the process is gone. Node writes stdout and
 * stderr synchronously to files, pipes and terminals, so nothing is left in a buffer.
 */
static napi_value js_exit(napi_env env, napi_callback_info info) {
  int64_t code;
  if (args(env, info, "i", &code)) return NULL;
  _exit((int)(code & 0xff));
}

/* this file's engine and memory functions, on the addon's exports */
void runtime_define(napi_env env, napi_value exports) {
  static const napi_property_descriptor d[] = {
    FN("v8Flags", js_v8_flags), FN("lowMemory", js_low_memory), FN("mallocTrim", js_malloc_trim), FN("madviseDontneed", js_madvise_dontneed),
    FN("exit", js_exit),
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
}
