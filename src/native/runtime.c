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
#include <stdlib.h>
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
/* Abseil's absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle), kIgnore = 0 */
#define LOCK_ORDER_SYMBOL "_ZN4absl29SetMutexDeadlockDetectionModeENS_15OnDeadlockCycleE"
/* Node-API's node_api_create_external_string_latin1 (Node 22.14 and later) */
#define EXTERNAL_LATIN1_SYMBOL "node_api_create_external_string_latin1"

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
 * ignoreLockOrder() -> whether it was turned off: the lock-order (deadlock) checking of
 * Abseil's mutex, which V8's own mutex is. Node's builds have it on: every lock taken
 * records the locks held with it in a graph (a 1 MiB table, filled when the first lock is
 * taken), a debugging aid that Abseil's release builds leave out (a possible inversion
 * is logged and stops the process); under emulation its code is one more part of every
 * lock. Turned off, no lock touches the graph again (dropLockGraph). Found by its
 * mangled name as v8Flags() finds its function; an enum argument is an int.
 */
static bool lock_order_ignored;
static napi_value js_ignore_lock_order(napi_env env, napi_callback_info info) {
  static void (*set_mode)(int);
  static int looked;
  (void)info;
  if (!looked) {
    looked = 1;
    *(void **)&set_mode = dlsym(RTLD_DEFAULT, LOCK_ORDER_SYMBOL);
    if (set_mode != NULL) {
      set_mode(0);
      lock_order_ignored = true;
    }
  }
  return js_bool(env, lock_order_ignored);
}

/*
 * dropLockGraph(start, length) with BigInt addresses -> bytes given back: in an anonymous
 * mapping that holds at least LOCK_GRAPH_PAGES resident pages of nothing but 0xff bytes
 * (the lock graph's empty hash slots, -1), those pages dropped with MADV_DONTNEED; pages
 * not resident are not read (mincore), so the look faults nothing in. Only once
 * ignoreLockOrder() has turned the checking off in this process (else 0, nothing
 * touched): the graph is then never read or written again. Half a megabyte of pages of
 * 0xff in one mapping is the graph's table and nothing else a Node process makes; the TS
 * caller (src/lib/trim.ts) gives only mappings at least the graph's size.
 */
#define LOCK_GRAPH_PAGES 128
static int all_ones(uint64_t a, long page) {
  const uint64_t *w = (const uint64_t *)(uintptr_t)a;
  size_t i, n = (size_t)page / sizeof *w;
  for (i = 0; i < n && w[i] == UINT64_MAX; i++) {}
  return i == n;
}
static napi_value js_drop_lock_graph(napi_env env, napi_callback_info info) {
  uint64_t start, len, pages, i, ones = 0;
  long page = sysconf(_SC_PAGESIZE);
  int64_t dropped = 0;
  unsigned char *in;
  if (args(env, info, "nn", &start, &len)) return NULL;
  if (!lock_order_ignored || page <= 0 || start % (uint64_t)page || len % (uint64_t)page || len == 0) return js_int(env, 0);
  pages = len / (uint64_t)page;
  if (!(in = malloc(pages))) return js_int(env, 0);
  if (mincore((void *)(uintptr_t)start, (size_t)len, in) != 0) { free(in); return js_int(env, 0); }
  /* bit 1 of in[i] (free in mincore's vector): page i is all 0xff */
  for (i = 0; i < pages; i++)
    if ((in[i] & 1) && all_ones(start + i * (uint64_t)page, page)) { in[i] |= 2; ones++; }
  for (i = 0; ones >= LOCK_GRAPH_PAGES && i < pages; i++) {
    uint64_t a = start + i * (uint64_t)page;
    if ((in[i] & 2) && madvise((void *)(uintptr_t)a, (size_t)page, MADV_DONTNEED) == 0) dropped += page;
  }
  free(in);
  return js_int(env, dropped);
}

/*
 * externalLatin1(arrayBuffer) -> a string over the buffer's bytes, not copied, or undefined
 * when this Node cannot make one. For the executable's own bundle (scripts/sea-loader.cjs:
 * node:sea's raw asset, in the executable's mapped pages for the process's life): V8 then
 * keeps no 400 KiB copy of it in its heap, and no start copies it. The bytes must never
 * change nor go away: nothing frees them (no finalizer).
 */
static napi_value js_external_latin1(napi_env env, napi_callback_info info) {
  static napi_status (*make)(napi_env, char *, size_t, napi_finalize, void *, napi_value *, bool *);
  static int looked;
  size_t argc = 1;
  napi_value argv[1], result;
  void *data;
  size_t len;
  bool copied;
  if (!looked) {
    looked = 1;
    *(void **)&make = dlsym(RTLD_DEFAULT, EXTERNAL_LATIN1_SYMBOL);
  }
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "externalLatin1: an ArrayBuffer expected");
    return NULL;
  }
  if (make == NULL || make(env, data, len, NULL, NULL, &result, &copied) != napi_ok) return NULL;
  return result;
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
    FN("exit", js_exit), FN("ignoreLockOrder", js_ignore_lock_order), FN("dropLockGraph", js_drop_lock_graph),
    FN("externalLatin1", js_external_latin1),
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
}
