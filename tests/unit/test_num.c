/* test_num.c - strict decimal parsing: what num.h promises, and nothing a
 * hostile or truncated value could slip past. */
#include "testlib.h"

#include <inttypes.h>

#include "num.h"

TestSuite(num, .timeout = 30);

#define SENTINEL_U 0xdeadbeefULL
#define SENTINEL_I (-777)

struct u_case {
    const char *s;
    uint64_t max;
    int err; /* 0: accepted with `want` */
    uint64_t want;
};

static const struct u_case u_cases[] = {
    { "0", UINT64_MAX, 0, 0 },
    { "1", UINT64_MAX, 0, 1 },
    { "42", UINT64_MAX, 0, 42 },
    { "18446744073709551615", UINT64_MAX, 0, UINT64_MAX },
    /* leading zeros are decimal, never octal */
    { "010", UINT64_MAX, 0, 10 },
    { "00", UINT64_MAX, 0, 0 },
    { "0009", UINT64_MAX, 0, 9 },
    { "10", 10, 0, 10 },
    { "0", 0, 0, 0 },
    /* malformed */
    { "", UINT64_MAX, EINVAL, 0 },
    { "-", UINT64_MAX, EINVAL, 0 },
    { "+", UINT64_MAX, EINVAL, 0 },
    { "+1", UINT64_MAX, EINVAL, 0 },
    { "-1", UINT64_MAX, EINVAL, 0 },
    { "-0", UINT64_MAX, EINVAL, 0 },
    { " 1", UINT64_MAX, EINVAL, 0 },
    { "1 ", UINT64_MAX, EINVAL, 0 },
    { "\t1", UINT64_MAX, EINVAL, 0 },
    { "1\n", UINT64_MAX, EINVAL, 0 },
    { "0x10", UINT64_MAX, EINVAL, 0 },
    { "0X1f", UINT64_MAX, EINVAL, 0 },
    { "1e3", UINT64_MAX, EINVAL, 0 },
    { "1.0", UINT64_MAX, EINVAL, 0 },
    { "1,000", UINT64_MAX, EINVAL, 0 },
    { "12a", UINT64_MAX, EINVAL, 0 },
    { "a12", UINT64_MAX, EINVAL, 0 },
    { "inf", UINT64_MAX, EINVAL, 0 },
    { "\xd9\xa1", UINT64_MAX, EINVAL, 0 },      /* ARABIC-INDIC DIGIT ONE */
    { "1\xef\xbc\x90", UINT64_MAX, EINVAL, 0 }, /* FULLWIDTH DIGIT ZERO */
    /* out of range */
    { "18446744073709551616", UINT64_MAX, ERANGE, 0 },
    { "18446744073709551620", UINT64_MAX, ERANGE, 0 },
    { "99999999999999999999999999", UINT64_MAX, ERANGE, 0 },
    { "11", 10, ERANGE, 0 },
    { "1", 0, ERANGE, 0 },
    { "4294967296", UINT32_MAX, ERANGE, 0 },
};

Test(num, parse_u64_table)
{
    for (size_t i = 0; i < ARRAY_SIZE(u_cases); i++) {
        const struct u_case *c = &u_cases[i];
        uint64_t v = SENTINEL_U;
        int rc;

        errno = 0;
        rc = parse_u64(c->s, c->max, &v);
        if (!c->err) {
            cr_assert_eq(rc, 0, "'%s' refused (errno %d)", c->s, errno);
            cr_assert_eq(v, c->want, "'%s' -> %" PRIu64, c->s, v);
        } else {
            cr_assert_eq(rc, -1, "'%s' accepted as %" PRIu64, c->s, v);
            cr_assert_eq(errno, c->err, "'%s': errno %d, want %d", c->s, errno, c->err);
            cr_assert_eq(v, SENTINEL_U, "'%s': output written on failure", c->s);
        }
    }
}

Test(num, parse_u64_null)
{
    uint64_t v = SENTINEL_U;

    cr_assert_eq(parse_u64(NULL, UINT64_MAX, &v), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(v, SENTINEL_U);
}

/* A NUL inside the buffer ends the string: what follows is not read. */
Test(num, parse_u64_stops_at_nul)
{
    static const char s[] = "12\0garbage";
    uint64_t v;

    cr_assert_eq(parse_u64(s, UINT64_MAX, &v), 0);
    cr_assert_eq(v, 12);
}

/* Every value around each power of ten up to the limit round-trips. */
Test(num, parse_u64_roundtrips_printf)
{
    uint64_t p = 1;

    for (int e = 0; e < 20; e++, p *= 10) {
        uint64_t vals[] = { p - 1, p, p + 1 };

        for (size_t i = 0; i < ARRAY_SIZE(vals); i++) {
            char buf[32];
            uint64_t v;

            snprintf(buf, sizeof(buf), "%" PRIu64, vals[i]);
            cr_assert_eq(parse_u64(buf, UINT64_MAX, &v), 0, "%s", buf);
            cr_assert_eq(v, vals[i], "%s", buf);
        }
        if (e == 19)
            break;
    }
}

struct i_case {
    const char *s;
    int64_t min, max;
    int err;
    int64_t want;
};

static const struct i_case i_cases[] = {
    { "0", INT64_MIN, INT64_MAX, 0, 0 },
    { "-0", INT64_MIN, INT64_MAX, 0, 0 },
    { "-1", INT64_MIN, INT64_MAX, 0, -1 },
    { "17", INT64_MIN, INT64_MAX, 0, 17 },
    { "9223372036854775807", INT64_MIN, INT64_MAX, 0, INT64_MAX },
    { "-9223372036854775808", INT64_MIN, INT64_MAX, 0, INT64_MIN },
    { "-010", INT64_MIN, INT64_MAX, 0, -10 },
    { "5", 5, 5, 0, 5 },
    { "9223372036854775808", INT64_MIN, INT64_MAX, ERANGE, 0 },
    { "-9223372036854775809", INT64_MIN, INT64_MAX, ERANGE, 0 },
    { "-99999999999999999999", INT64_MIN, INT64_MAX, ERANGE, 0 },
    { "5", 0, 4, ERANGE, 0 },
    { "-1", 0, 4, ERANGE, 0 },
    { "-5", -4, 4, ERANGE, 0 },
    { "", INT64_MIN, INT64_MAX, EINVAL, 0 },
    { "-", INT64_MIN, INT64_MAX, EINVAL, 0 },
    { "--1", INT64_MIN, INT64_MAX, EINVAL, 0 },
    { "-+1", INT64_MIN, INT64_MAX, EINVAL, 0 },
    { "+1", INT64_MIN, INT64_MAX, EINVAL, 0 },
    { "- 1", INT64_MIN, INT64_MAX, EINVAL, 0 },
    { " -1", INT64_MIN, INT64_MAX, EINVAL, 0 },
    { "-1 ", INT64_MIN, INT64_MAX, EINVAL, 0 },
    { "-0x1", INT64_MIN, INT64_MAX, EINVAL, 0 },
    { "1-", INT64_MIN, INT64_MAX, EINVAL, 0 },
};

Test(num, parse_i64_table)
{
    for (size_t i = 0; i < ARRAY_SIZE(i_cases); i++) {
        const struct i_case *c = &i_cases[i];
        int64_t v = SENTINEL_I;
        int rc;

        errno = 0;
        rc = parse_i64(c->s, c->min, c->max, &v);
        if (!c->err) {
            cr_assert_eq(rc, 0, "'%s' refused (errno %d)", c->s, errno);
            cr_assert_eq(v, c->want, "'%s' -> %" PRId64, c->s, v);
        } else {
            cr_assert_eq(rc, -1, "'%s' accepted as %" PRId64, c->s, v);
            cr_assert_eq(errno, c->err, "'%s': errno %d, want %d", c->s, errno, c->err);
            cr_assert_eq(v, SENTINEL_I, "'%s': output written on failure", c->s);
        }
    }
}

Test(num, parse_i64_null)
{
    int64_t v = SENTINEL_I;

    cr_assert_eq(parse_i64(NULL, INT64_MIN, INT64_MAX, &v), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(v, SENTINEL_I);
}

struct id_case {
    const char *s;
    int err;
    int want;
};

static const struct id_case id_cases[] = {
    { "0", 0, 0 },
    { "9", 0, 9 },
    { "107", 0, 107 },
    { "2147483647", 0, INT_MAX },
    { "2147483648", ERANGE, 0 },
    { "4294967296", ERANGE, 0 },
    { "4294967297", ERANGE, 0 }, /* would wrap to 1 in a 32-bit cast */
    { "18446744073709551616", ERANGE, 0 },
    { "-1", EINVAL, 0 },
    { "-0", EINVAL, 0 },
    { "+1", EINVAL, 0 },
    { "", EINVAL, 0 },
    { " 9", EINVAL, 0 },
    { "9 ", EINVAL, 0 },
    { "0x9", EINVAL, 0 },
    { "9;", EINVAL, 0 },
    { "1e2", EINVAL, 0 },
};

Test(num, parse_id_table)
{
    for (size_t i = 0; i < ARRAY_SIZE(id_cases); i++) {
        const struct id_case *c = &id_cases[i];
        int v = SENTINEL_I;
        int rc;

        errno = 0;
        rc = parse_id(c->s, &v);
        if (!c->err) {
            cr_assert_eq(rc, 0, "'%s' refused", c->s);
            cr_assert_eq(v, c->want, "'%s' -> %d", c->s, v);
        } else {
            cr_assert_eq(rc, -1, "'%s' accepted as %d", c->s, v);
            cr_assert_eq(errno, c->err, "'%s': errno %d, want %d", c->s, errno, c->err);
            cr_assert_eq(v, SENTINEL_I, "'%s': output written", c->s);
        }
    }
    cr_assert_eq(parse_id(NULL, &(int){ 0 }), -1);
}

static const struct id_case snap_cases[] = {
    { "-1", 0, -1 },
    { "0", 0, 0 },
    { "1", 0, 1 },
    { "2147483647", 0, INT_MAX },
    { "-0", 0, 0 },
    { "-2", ERANGE, 0 },
    { "-2147483648", ERANGE, 0 },
    { "2147483648", ERANGE, 0 },
    { "4294967295", ERANGE, 0 }, /* would be -1 in a 32-bit cast */
    { "-", EINVAL, 0 },
    { "--1", EINVAL, 0 },
    { "+1", EINVAL, 0 },
    { "", EINVAL, 0 },
    { " -1", EINVAL, 0 },
    { "-1 ", EINVAL, 0 },
    { "0x0", EINVAL, 0 },
};

Test(num, parse_snap_id_table)
{
    for (size_t i = 0; i < ARRAY_SIZE(snap_cases); i++) {
        const struct id_case *c = &snap_cases[i];
        int v = SENTINEL_I;
        int rc;

        errno = 0;
        rc = parse_snap_id(c->s, &v);
        if (!c->err) {
            cr_assert_eq(rc, 0, "'%s' refused", c->s);
            cr_assert_eq(v, c->want, "'%s' -> %d", c->s, v);
        } else {
            cr_assert_eq(rc, -1, "'%s' accepted as %d", c->s, v);
            cr_assert_eq(errno, c->err, "'%s': errno %d, want %d", c->s, errno, c->err);
            cr_assert_eq(v, SENTINEL_I, "'%s': output written", c->s);
        }
    }
    cr_assert_eq(parse_snap_id(NULL, &(int){ 0 }), -1);
}

/* Parsing records no failure reason: callers word their own. */
Test(num, no_reason_recorded)
{
    uint64_t u;
    int64_t i;
    int id;

    cr_assert_eq(parse_u64("x", 10, &u), -1);
    cr_assert_eq(parse_i64("x", 0, 10, &i), -1);
    cr_assert_eq(parse_id("x", &id), -1);
    cr_assert_eq(parse_snap_id("x", &id), -1);
    cr_assert(!failed());
}
