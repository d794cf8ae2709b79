/* alloc.c - allocation helpers that never return NULL, and small string tests. */
#include "util.h"

#include <strings.h>

#include "log.h"

static void *check(void *p)
{
    if (!p)
        die("out of memory");
    return p;
}

void *xmalloc(size_t size)
{
    return check(malloc(size ? size : 1));
}

void *xcalloc(size_t nmemb, size_t size)
{
    return check(calloc(nmemb ? nmemb : 1, size ? size : 1));
}

void *xrealloc(void *ptr, size_t size)
{
    return check(realloc(ptr, size ? size : 1));
}

char *xstrdup(const char *s)
{
    return check(strdup(s));
}

char *xstrndup(const char *s, size_t n)
{
    return check(strndup(s, n));
}

char *xvasprintf(const char *fmt, va_list ap)
{
    char *s;

    if (vasprintf(&s, fmt, ap) < 0)
        die("out of memory");
    return s;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = xvasprintf(fmt, ap);
    va_end(ap);
    return s;
}

bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);

    return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

bool is_yes(const char *s)
{
    return s && (!strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcmp(s, "1") ||
                 !strcasecmp(s, "on"));
}

bool is_no(const char *s)
{
    return s && (!strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcmp(s, "0") ||
                 !strcasecmp(s, "off"));
}
