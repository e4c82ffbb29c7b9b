/*
 * napi-args.c: the addon's side of Node-API that every function shares (napi-args.h):
 * arguments checked and unpacked in one place, so a wrong call is a TypeError naming
 * the function and the argument, never a C string cut short (a path or a name cut at a
 * NUL or at its buffer's end would name another file, user or interface); errors of
 * failed system calls made in one place, in the shape of Node's fs errors.
 */
#include "napi-args.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the most 'v' vectors one call unpacks (spawn and execve: argv and envp) */
#define MAXVECTORS 4

/* what an argument error needs to say where it is */
struct call {
  napi_env env;
  const char *fn; /* the function's JS name (its callback data) */
  size_t arg;     /* the argument's number, from 1 */
};

/* JavaScript's name for a value's type, for "expected ..., not TYPE" */
static const char *type_name(napi_env env, napi_value v) {
  static const char *const names[] = {"undefined", "null", "boolean", "number", "string", "symbol",
                                      "object", "function", "external", "bigint"};
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || (size_t)t >= sizeof names / sizeof names[0]) return "unknown";
  return names[t];
}

/* Throw a TypeError (range false) or RangeError "fn: argument N: TEXT" ("fn: TEXT" before
 * the first argument); returns -1. */
static int arg_error(const struct call *c, bool range, const char *fmt, ...) {
  char text[256], msg[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (c->arg) snprintf(msg, sizeof msg, "%s: argument %zu: %s", c->fn, c->arg, text);
  else snprintf(msg, sizeof msg, "%s: %s", c->fn, text);
  if (range) napi_throw_range_error(c->env, NULL, msg);
  else napi_throw_type_error(c->env, NULL, msg);
  return -1;
}

/* "expected WHAT, not TYPE" for v */
static int type_error(const struct call *c, napi_value v, const char *what) {
  return arg_error(c, false, "expected %s, not %s", what, type_name(c->env, v));
}

/* the kinds of string get_string() takes */
enum string_kind {
  TEXT,  /* no NUL in it: a C string */
  PATH,  /* a C string too; too long is ENAMETOOLONG, as the system call would say */
  BYTES, /* data written as it is, NULs and all */
};

/* A string copied into buf (size bytes): all of it, its length in *len (if len), or -1 thrown. */
static int get_string(const struct call *c, napi_value v, char *buf, size_t size, enum string_kind kind, size_t *len) {
  static const char *const expected[] = {"a string", "a path (string)", "a Buffer or a string"};
  size_t n;
  if (napi_get_value_string_utf8(c->env, v, buf, size, &n) != napi_ok) return type_error(c, v, expected[kind]);
  /* a copy stops short of the buffer's end only by less than a character (4 bytes) when cut */
  if (n + 4 >= size) {
    size_t whole = 0;
    napi_get_value_string_utf8(c->env, v, NULL, 0, &whole);
    if (whole >= size && kind == PATH) {
      errno = ENAMETOOLONG;
      throw_errno(c->env, "path");
      return -1;
    }
    if (whole >= size) return arg_error(c, true, "%zu bytes, more than %zu", whole, size - 1);
  }
  if (kind != BYTES && strlen(buf) != n) return arg_error(c, false, "must not contain a NUL byte");
  if (len) *len = n;
  return 0;
}

/* free a vector of get_vector(), strings and all */
void free_vector(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

/* An array of strings as a NULL-ended vector, or -1 thrown (ENOMEM as an errno error). */
static int get_vector(const struct call *c, napi_value arr, char ***out) {
  uint32_t n = 0;
  bool is_array = false;
  if (napi_is_array(c->env, arr, &is_array) != napi_ok || !is_array || napi_get_array_length(c->env, arr, &n) != napi_ok)
    return type_error(c, arr, "an array of strings");
  char **v = calloc((size_t)n + 1, sizeof(char *));
  if (!v) goto nomem;
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    size_t len = 0;
    if (napi_get_element(c->env, arr, i, &el) != napi_ok || napi_get_value_string_utf8(c->env, el, NULL, 0, &len) != napi_ok) {
      free_vector(v);
      return arg_error(c, false, "element %u: expected a string, not %s", i, type_name(c->env, el));
    }
    if (!(v[i] = malloc(len + 1))) {
      free_vector(v);
      goto nomem;
    }
    napi_get_value_string_utf8(c->env, el, v[i], len + 1, &len);
    if (strlen(v[i]) != len) {
      free_vector(v);
      return arg_error(c, false, "element %u: must not contain a NUL byte", i);
    }
  }
  *out = v;
  return 0;
nomem:
  errno = ENOMEM;
  throw_errno(c->env, c->fn);
  return -1;
}

/* An array of at most max numbers into buf, its length into *count, or -1 thrown. */
static int get_numbers(const struct call *c, napi_value arr, double *buf, uint32_t max, uint32_t *count) {
  uint32_t n = 0;
  bool is_array = false;
  if (napi_is_array(c->env, arr, &is_array) != napi_ok || !is_array || napi_get_array_length(c->env, arr, &n) != napi_ok)
    return type_error(c, arr, "an array of numbers");
  if (n > max) return arg_error(c, true, "%u numbers, more than %u", n, max);
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    if (napi_get_element(c->env, arr, i, &el) != napi_ok || napi_get_value_double(c->env, el, &buf[i]) != napi_ok)
      return arg_error(c, false, "element %u: expected a number, not %s", i, type_name(c->env, el));
  }
  *count = n;
  return 0;
}

/* true when v is null or undefined (what '?' lets through) */
static bool is_nothing(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_null || t == napi_undefined);
}

/* the most arguments a spec names: spawn's seven */
#define MAXARGS 8

/* the one unpacking of a call's arguments (the spec's letters: napi-args.h) */
int args(napi_env env, napi_callback_info info, const char *spec, ...) {
  napi_value argv[MAXARGS], self;
  size_t argc = MAXARGS;
  void *data = NULL;
  char ***vectors[MAXVECTORS];
  size_t nvectors = 0;
  napi_get_cb_info(env, info, &argc, argv, &self, &data);
  /* missing arguments are undefined, as napi_get_cb_info fills them */
  struct call c = {env, data ? (const char *)data : "addon", 0};
  int bad = 0;
  va_list ap;
  va_start(ap, spec);
  for (const char *s = spec; *s && !bad; s++) {
    if (*s == '@') {
      void **out = va_arg(ap, void **);
      *out = NULL;
      if (napi_unwrap(env, self, out) != napi_ok || *out == NULL) bad = arg_error(&c, false, "called without its object");
      continue;
    }
    bool optional = *s == '?';
    if (optional) s++;
    if (c.arg == MAXARGS) {
      napi_throw_error(env, NULL, "addon: a spec of too many arguments");
      bad = -1;
      break;
    }
    napi_value v = argv[c.arg++];
    bool nothing = optional && is_nothing(env, v);
    switch (*s) {
    case 'p': {
      char *buf = va_arg(ap, char *);
      bad = get_string(&c, v, buf, PATHLEN, PATH, NULL);
      break;
    }
    case 's': {
      char *buf = va_arg(ap, char *);
      size_t size = va_arg(ap, size_t);
      bad = get_string(&c, v, buf, size, TEXT, NULL);
      break;
    }
    case 'i':
      if (napi_get_value_int64(env, v, va_arg(ap, int64_t *)) != napi_ok) bad = type_error(&c, v, "a number");
      break;
    case 'd':
      if (napi_get_value_double(env, v, va_arg(ap, double *)) != napi_ok) bad = type_error(&c, v, "a number");
      break;
    case 'b': {
      bool *out = va_arg(ap, bool *);
      *out = false;
      if (!nothing && napi_get_value_bool(env, v, out) != napi_ok) bad = type_error(&c, v, "a boolean");
      break;
    }
    case 'n': {
      bool lossless;
      if (napi_get_value_bigint_uint64(env, v, va_arg(ap, uint64_t *), &lossless) != napi_ok) bad = type_error(&c, v, "a BigInt");
      break;
    }
    case 'f': {
      napi_value *out = va_arg(ap, napi_value *);
      napi_valuetype t;
      *out = v;
      if (napi_typeof(env, v, &t) != napi_ok || t != napi_function) bad = type_error(&c, v, "a function");
      break;
    }
    case 'v': {
      char ***out = va_arg(ap, char ***);
      *out = NULL;
      if (nvectors == MAXVECTORS) {
        napi_throw_error(env, NULL, "addon: a spec of too many vectors");
        bad = -1;
      } else if (!nothing) bad = get_vector(&c, v, out);
      if (*out) vectors[nvectors++] = out;
      break;
    }
    case 'a': {
      double *buf = va_arg(ap, double *);
      uint32_t max = va_arg(ap, uint32_t);
      uint32_t *count = va_arg(ap, uint32_t *);
      *count = 0;
      if (!nothing) bad = get_numbers(&c, v, buf, max, count);
      break;
    }
    case 'x': {
      const char **data_out = va_arg(ap, const char **);
      size_t *len = va_arg(ap, size_t *);
      char *buf = va_arg(ap, char *);
      size_t size = va_arg(ap, size_t);
      bool is_buffer = false;
      napi_is_buffer(env, v, &is_buffer);
      if (is_buffer) {
        void *p;
        napi_get_buffer_info(env, v, &p, len);
        *data_out = p;
      } else {
        *data_out = buf;
        bad = get_string(&c, v, buf, size, BYTES, len);
      }
      break;
    }
    default: /* a spec letter this file does not know: a mistake in the addon */
      napi_throw_error(env, NULL, "addon: a bad argument spec");
      bad = -1;
    }
  }
  va_end(ap);
  if (bad)
    while (nvectors > 0) {
      nvectors--;
      free_vector(*vectors[nvectors]);
      *vectors[nvectors] = NULL;
    }
  return bad ? -1 : 0;
}

/* the one shape of a failed system call's Error (napi-args.h) */
napi_value errno_error(napi_env env, int e, const char *what) {
  const char *name = strerrorname_np(e);
  char msg[512];
  napi_value code, text, err, num, syscall;
  if (what) snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
  else snprintf(msg, sizeof msg, "%s", strerror(e));
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &err);
  napi_create_int32(env, -e, &num);
  napi_set_named_property(env, err, "errno", num);
  if (what) {
    napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &syscall);
    napi_set_named_property(env, err, "syscall", syscall);
  }
  return err;
}

/* throw the Error of errno: what every failed system call returns */
napi_value throw_errno(napi_env env, const char *what) {
  napi_throw(env, errno_error(env, errno, what));
  return NULL;
}

/* an integer result */
napi_value js_int(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

/* a yes/no result */
napi_value js_bool(napi_env env, bool v) {
  napi_value r;
  napi_get_boolean(env, v, &r);
  return r;
}

/* null: nothing there (a missing file, no datagram, no such user) */
napi_value js_null(napi_env env) {
  napi_value r;
  napi_get_null(env, &r);
  return r;
}

/* a result of several numbers (stat, pipe, limits, a user's ids) */
napi_value js_numbers(napi_env env, const double *v, uint32_t n) {
  napi_value arr, x;
  napi_create_array_with_length(env, n, &arr);
  for (uint32_t i = 0; i < n; i++) {
    napi_create_double(env, v[i], &x);
    napi_set_element(env, arr, i, x);
  }
  return arr;
}

/* 2^64 as a double: every limit from it up is RLIM_INFINITY */
#define RLIM_TOP 18446744073709551616.0

/* a limit from JS: Infinity (or 2^64 and up) is RLIM_INFINITY */
rlim_t rlim_of(double v) {
  return v >= RLIM_TOP ? RLIM_INFINITY : (rlim_t)v;
}

/* a limit for JS: RLIM_INFINITY is Infinity */
double rlim_number(rlim_t v) {
  return v == RLIM_INFINITY ? (double)INFINITY : (double)v;
}
