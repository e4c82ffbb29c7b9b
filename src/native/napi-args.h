/*
 * napi-args.h: what every file of the addon shares, internal to src/native/. One function
 * unpacks and checks a call's arguments (args), one makes the errors of failed system
 * calls (errno_error, thrown by throw_errno), a few make results; FN lists a function
 * given to JavaScript. Included first by every .c file here (it sets _GNU_SOURCE).
 */
#ifndef RUNIT_TS_NAPI_ARGS_H
#define RUNIT_TS_NAPI_ARGS_H

#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <node_api.h>

/* bytes a path may take, its NUL included (the kernel's PATH_MAX) */
#define PATHLEN 4096

/*
 * Unpack this call's arguments by spec, one letter each, into the pointers that follow:
 *   p  char[PATHLEN]          a path: the whole string (longer: ENAMETOOLONG), no NUL in it
 *   s  char *, size_t size    a string that fits in size bytes with its NUL, no NUL in it
 *   i  int64_t *              a number, as an integer
 *   d  double *               a number as it is (Infinity too)
 *   b  bool *                 a boolean
 *   n  uint64_t *             a BigInt
 *   f  napi_value *           a function
 *   v  char ***               an array of strings: a malloc'ed NULL-ended vector (free_vector)
 *   a  double *, uint32_t max, uint32_t *count   an array of at most max numbers
 *   x  const char **, size_t *len, char *, size_t size
 *                             bytes: a Buffer's (pointed to, not copied), or a string's
 *                             (NULs allowed) copied into the buffer of size bytes
 *   @  void **                not an argument: the object a method was called on, as
 *                             napi_wrap left it
 * '?' before v, a or b lets null or undefined through (a NULL vector, a count of 0, false).
 * Returns 0, or -1 with a TypeError/RangeError naming the function and the argument
 * thrown (and nothing left allocated): the caller returns NULL.
 */
int args(napi_env env, napi_callback_info info, const char *spec, ...);

/* A vector from args()'s 'v', freed with its strings (NULL is nothing). */
void free_vector(char **v);

/*
 * An Error for errno e as Node's fs makes them: message "what: strerror" (what NULL: the
 * text alone), .code the errno name ("ENOENT"), .errno -e, .syscall what.
 */
napi_value errno_error(napi_env env, int e, const char *what);

/* Throw errno_error(errno, what); returns NULL, what a failed function returns. */
napi_value throw_errno(napi_env env, const char *what);

/* Results: a number, a boolean, null, an array of n numbers. */
napi_value js_int(napi_env env, int64_t v);
napi_value js_bool(napi_env env, bool v);
napi_value js_null(napi_env env);
napi_value js_numbers(napi_env env, const double *v, uint32_t n);

/* Resource limits are numbers in JS, RLIM_INFINITY is Infinity (and anything from 2^64 up). */
rlim_t rlim_of(double v);
double rlim_number(rlim_t v);

/* A function given to JavaScript: its name, passed again as its data for args() to quote. */
#define FN(name, fn) { name, NULL, fn, NULL, NULL, NULL, napi_enumerable, (void *)(name) }

/* Each concern's file defines its functions on the addon's exports (called by module.c). */
void files_define(napi_env env, napi_value exports);
void process_define(napi_env env, napi_value exports);
void system_define(napi_env env, napi_value exports);
void watch_define(napi_env env, napi_value exports);
void runtime_define(napi_env env, napi_value exports);

#endif
