/* strvec.c - vectors of owned strings. */
#include "strvec.h"

const char *strvec_empty[1];

void strvec_init(struct strvec *sv)
{
    sv->v = strvec_empty;
    sv->nr = 0;
    sv->alloc = 0;
}

void strvec_clear(struct strvec *sv)
{
    size_t i;

    if (sv->alloc) {
        for (i = 0; i < sv->nr; i++)
            free((char *)sv->v[i]);
        free(sv->v);
    }
    strvec_init(sv);
}

static const char *push_owned(struct strvec *sv, char *s)
{
    if (!sv->alloc)
        sv->v = NULL;
    ALLOC_GROW(sv->v, sv->nr + 2, sv->alloc);
    sv->v[sv->nr++] = s;
    sv->v[sv->nr] = NULL;
    return s;
}

const char *strvec_push(struct strvec *sv, const char *s)
{
    return push_owned(sv, xstrdup(s));
}

const char *strvec_pushf(struct strvec *sv, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = xvasprintf(fmt, ap);
    va_end(ap);
    return push_owned(sv, s);
}

void strvec_pushl(struct strvec *sv, ...)
{
    va_list ap;
    const char *s;

    va_start(ap, sv);
    while ((s = va_arg(ap, const char *)))
        strvec_push(sv, s);
    va_end(ap);
}

void strvec_pushv(struct strvec *sv, const char *const *v)
{
    for (; *v; v++)
        strvec_push(sv, *v);
}

void strvec_split(struct strvec *sv, const char *s)
{
    while (*s) {
        size_t n;

        s += strspn(s, " \t\r\n");
        n = strcspn(s, " \t\r\n");
        if (n)
            push_owned(sv, xstrndup(s, n));
        s += n;
    }
}
