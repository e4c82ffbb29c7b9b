/*
 * watch.c: watchFd, reading a pipe or FIFO as it becomes readable, from a libuv poll
 * handle in Node's own event loop. Node reads a pipe only through a net.Socket (or a
 * ReadStream), whose stream machinery is tens of objects per pipe, made at boot for every
 * service's control FIFO and every logger's input; runsv's poll() of its FIFO and
 * svlogd's read() of its input need none of it. Node-API gives the loop, not a poll.
 */
#include "napi-args.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

/* bytes one read takes at most: a net.Socket's read size, one read per chunk of a busy logger */
#define WATCH_READ 65536

/* A watch: its poll handle (NULL once stopped), its callback, and whether it is paused. */
typedef struct {
  uv_poll_t *poll;
  napi_env env;
  napi_ref cb;
  napi_async_context ctx;
  int fd;
  int paused;
} fd_watch;

/*
 * The watches' class, one per env (the addon's instance data): its prototype holds their
 * methods, made once, not four new functions on each watch (V8 instantiating functions
 * from their templates at every watchFd: a service's start, each command the guest agent
 * runs, where under TCG every new path is code to translate).
 */
typedef struct {
  napi_ref ctor;
} watch_class;

/* libuv has closed the handle: its memory is ours to free */
static void watch_closed(uv_handle_t *h) {
  free(h);
}

/* stop polling; libuv frees the handle once closed (safe to close the fd after this) */
static void watch_unpoll(fd_watch *w) {
  uv_poll_stop(w->poll);
  uv_close((uv_handle_t *)w->poll, watch_closed);
  w->poll = NULL;
}

/* stop for good: the poll, the callback's reference and its async context */
static void watch_stop(fd_watch *w) {
  if (w->poll == NULL) return;
  watch_unpoll(w);
  napi_delete_reference(w->env, w->cb);
  napi_async_destroy(w->env, w->ctx);
}

/* call the watch's callback with argv, as a callback from the event loop */
static void watch_call(fd_watch *w, napi_value *argv, size_t argc) {
  napi_value cb, recv;
  napi_get_reference_value(w->env, w->cb, &cb);
  napi_get_global(w->env, &recv); /* make_callback wants an object as `this` */
  /* make_callback: the promise jobs and nextTicks the callback queues run before libuv goes on */
  napi_make_callback(w->env, w->ctx, recv, cb, argc, argv, NULL);
}

/* libuv's poll callback: read once, and give the callback the data, or the end */
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
    /* the end (error null), or a read error: its text alone, as the tools print it */
    napi_value argv[2] = {js_null(env), n == 0 ? js_null(env) : errno_error(env, e, NULL)};
    watch_call(w, argv, 2);
    watch_stop(w);
  }
  napi_close_handle_scope(env, scope);
}

/* the watch a method was called on (its `this`), or NULL with a TypeError thrown */
static fd_watch *watch_of(napi_env env, napi_callback_info info) {
  void *w;
  return args(env, info, "@", &w) ? NULL : w;
}

/* close(): stop for good (twice is harmless) */
static napi_value watch_close(napi_env env, napi_callback_info info) {
  fd_watch *w = watch_of(env, info);
  if (w == NULL) return NULL;
  watch_stop(w);
  return NULL;
}

/* pause(): read nothing until resume() (svlogd while it writes) */
static napi_value watch_pause(napi_env env, napi_callback_info info) {
  fd_watch *w = watch_of(env, info);
  if (w == NULL) return NULL;
  if (w->poll != NULL && !w->paused) uv_poll_stop(w->poll);
  w->paused = 1;
  return NULL;
}

/* resume(): read again */
static napi_value watch_resume(napi_env env, napi_callback_info info) {
  fd_watch *w = watch_of(env, info);
  if (w == NULL) return NULL;
  /* level-triggered: what came while paused is told at once */
  if (w->poll != NULL && w->paused) uv_poll_start(w->poll, UV_READABLE, watch_ready);
  w->paused = 0;
  return NULL;
}

/* unref(), as a net.Socket's: the watch alone does not keep the process running */
static napi_value watch_unref(napi_env env, napi_callback_info info) {
  fd_watch *w = watch_of(env, info);
  if (w == NULL) return NULL;
  if (w->poll != NULL) uv_unref((uv_handle_t *)w->poll);
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

/*
 * watchFd(fd, onData): call onData(buffer) with what a read() of the fd gives each time it
 * becomes readable, onData(null, error) once on end of file or an error (the watch then
 * stops). The fd is made non-blocking, as a net.Socket makes it; it stays the caller's.
 * Returns an FdWatch (methods close, pause, resume, unref, on its class); unref() lets the
 * process end while it watches.
 */
static napi_value js_watch_fd(napi_env env, napi_callback_info info) {
  napi_value cb, obj, name, resource;
  int64_t fd;
  uv_loop_t *loop;
  if (args(env, info, "if", &fd, &cb)) return NULL;
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
  napi_create_reference(env, cb, 1, &w->cb);
  napi_create_string_utf8(env, "runit-ts:watchFd", NAPI_AUTO_LENGTH, &name);
  napi_create_object(env, &resource);
  napi_async_init(env, resource, name, &w->ctx);
  /* an instance of the watch class: its methods are the class's, made once per env */
  watch_class *wc = NULL;
  napi_value ctor;
  napi_get_instance_data(env, (void **)&wc);
  napi_get_reference_value(env, wc->ctor, &ctor);
  napi_new_instance(env, ctor, 0, NULL, &obj);
  /* the state lives as long as the object (after close(), only that is left); its
     methods find it through `this`, so a method taken off the object cannot outlive it */
  napi_wrap(env, obj, w, watch_free, NULL, NULL);
  return obj;
}

/* the class's constructor: the object is all it makes (js_watch_fd wraps the state in it) */
static napi_value watch_construct(napi_env env, napi_callback_info info) {
  napi_value self;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  return self;
}

/* the env is going away: its class reference with it */
static void watch_class_free(napi_env env, void *data, void *hint) {
  (void)hint;
  watch_class *wc = data;
  napi_delete_reference(env, wc->ctor);
  free(wc);
}

/* this file's fd watch functions, on the addon's exports, and the watches' class (the addon's instance data) */
void watch_define(napi_env env, napi_value exports) {
  static const napi_property_descriptor methods[] = {
    FN("close", watch_close), FN("pause", watch_pause), FN("resume", watch_resume), FN("unref", watch_unref),
  };
  napi_value ctor;
  watch_class *wc = calloc(1, sizeof *wc);
  if (wc == NULL) {
    napi_throw_error(env, NULL, "watchFd: out of memory");
    return;
  }
  napi_define_class(env, "FdWatch", NAPI_AUTO_LENGTH, watch_construct, NULL, sizeof methods / sizeof methods[0], methods, &ctor);
  napi_create_reference(env, ctor, 1, &wc->ctor);
  napi_set_instance_data(env, wc, watch_class_free, NULL);
  static const napi_property_descriptor d[] = {FN("watchFd", js_watch_fd)};
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
}
