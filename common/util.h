/*
 * util.h - the one header every qcow2c source file includes first.
 *
 * It pulls in the system headers the project relies on, a few tiny macros,
 * the allocation helpers (which never return NULL: a storage driver that runs
 * out of memory can only fail the action, so they print one reason line and
 * exit), and, last of all, banned.h, which turns unsafe libc calls into
 * compile errors.
 */
#ifndef QCOW2C_UTIL_H
#define QCOW2C_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UNUSED __attribute__((unused))
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#define NORETURN __attribute__((noreturn))
#define WARN_UNUSED __attribute__((warn_unused_result))

/* Allocation that cannot fail: on exhaustion the action dies with one line. */
void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
char *xvasprintf(const char *fmt, va_list ap) PRINTF_LIKE(1, 0);

/* Grow an array so that it holds at least `nr` elements of `*(x)`. */
#define ALLOC_GROW(x, nr, alloc)                                                        \
    do {                                                                                \
        if ((nr) > (alloc)) {                                                           \
            (alloc) = (nr) + 16 > (alloc) * 3 / 2 ? (nr) + 16 : (alloc) * 3 / 2;        \
            (x) = xrealloc((x), (alloc) * sizeof(*(x)));                                \
        }                                                                               \
    } while (0)

static inline bool streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static inline bool str_empty(const char *s)
{
    return !s || !*s;
}

bool starts_with(const char *s, const char *prefix);
bool ends_with(const char *s, const char *suffix);

/* "yes"/"true"/"1"/"on" in any case. OpenNebula templates use YES/NO. */
bool is_yes(const char *s);
/* "no"/"false"/"0"/"off" in any case. */
bool is_no(const char *s);

#include "banned.h"

#endif
