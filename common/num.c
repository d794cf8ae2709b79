/* num.c - strict decimal parsing; see num.h. */
#include "num.h"

int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || !*s) {
        errno = EINVAL;
        return -1;
    }
    for (; *s; s++) {
        unsigned d;

        if (*s < '0' || *s > '9') {
            errno = EINVAL;
            return -1;
        }
        d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) {
            errno = ERANGE;
            return -1;
        }
        v = v * 10 + d;
    }
    if (v > max) {
        errno = ERANGE;
        return -1;
    }
    *out = v;
    return 0;
}

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    uint64_t mag;
    int64_t v;

    if (s && *s == '-') {
        if (parse_u64(s + 1, (uint64_t)INT64_MAX + 1, &mag) < 0)
            return -1;
        v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (parse_u64(s, INT64_MAX, &mag) < 0)
            return -1;
        v = (int64_t)mag;
    }
    if (v < min || v > max) {
        errno = ERANGE;
        return -1;
    }
    *out = v;
    return 0;
}

int parse_id(const char *s, int *out)
{
    uint64_t v;

    if (parse_u64(s, INT_MAX, &v) < 0)
        return -1;
    *out = (int)v;
    return 0;
}

int parse_snap_id(const char *s, int *out)
{
    int64_t v;

    if (parse_i64(s, -1, INT_MAX, &v) < 0)
        return -1;
    *out = (int)v;
    return 0;
}
