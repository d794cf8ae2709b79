/* test_strvec.c - NULL-terminated vectors of owned strings. */
#include "testlib.h"

#include "strvec.h"

TestSuite(strvec, .timeout = 30);

/* v never NULL, v[nr] == NULL, every element a string. */
static void check_invariants(const struct strvec *sv)
{
    cr_assert_not_null(sv->v);
    cr_assert_null(sv->v[sv->nr], "v[nr] is not NULL (nr %zu)", sv->nr);
    for (size_t i = 0; i < sv->nr; i++)
        cr_assert_not_null(sv->v[i], "v[%zu] is NULL", i);
    if (!sv->alloc)
        cr_assert_eq(sv->nr, 0);
    else
        cr_assert_lt(sv->nr, sv->alloc);
}

static void check_equal(const struct strvec *sv, const char *const *want, size_t n)
{
    check_invariants(sv);
    cr_assert_eq(sv->nr, n, "%zu elements, want %zu", sv->nr, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(sv->v[i], want[i], "element %zu", i);
}

Test(strvec, init_is_an_empty_vector)
{
    struct strvec a = STRVEC_INIT, b;

    check_invariants(&a);
    cr_assert_eq(a.v, strvec_empty);
    strvec_init(&b);
    check_invariants(&b);
    strvec_clear(&a); /* clearing an untouched vector is fine */
    check_invariants(&a);
    cr_assert_null(strvec_empty[0], "the shared empty vector was not written to");
}

Test(strvec, push_copies)
{
    struct strvec sv = STRVEC_INIT;
    char buf[] = "mutable";
    const char *got = strvec_push(&sv, buf);

    cr_assert_neq(got, buf);
    cr_assert_eq(got, sv.v[0], "push returns the stored copy");
    buf[0] = 'X';
    cr_assert_str_eq(sv.v[0], "mutable");
    strvec_push(&sv, "");
    check_equal(&sv, (const char *const[]){ "mutable", "" }, 2);
    strvec_clear(&sv);
    check_invariants(&sv);
}

Test(strvec, many_pushes_keep_the_terminator)
{
    struct strvec sv = STRVEC_INIT;

    for (int i = 0; i < 2000; i++) {
        strvec_pushf(&sv, "arg%d", i);
        check_invariants(&sv);
    }
    cr_assert_eq(sv.nr, 2000);
    for (int i = 0; i < 2000; i += 111) {
        char want[16];

        snprintf(want, sizeof(want), "arg%d", i);
        cr_assert_str_eq(sv.v[i], want);
    }
    strvec_clear(&sv);
    check_invariants(&sv);
    strvec_push(&sv, "reused after clear");
    check_equal(&sv, (const char *const[]){ "reused after clear" }, 1);
    strvec_clear(&sv);
}

Test(strvec, pushf)
{
    struct strvec sv = STRVEC_INIT;
    const char *s = strvec_pushf(&sv, "-oConnectTimeout=%u", 15u);

    cr_assert_str_eq(s, "-oConnectTimeout=15");
    strvec_pushf(&sv, "%s", "");
    check_equal(&sv, (const char *const[]){ "-oConnectTimeout=15", "" }, 2);
    strvec_clear(&sv);
}

Test(strvec, pushl_and_pushv)
{
    struct strvec sv = STRVEC_INIT, copy = STRVEC_INIT;
    static const char *const want[] = { "ssh", "-o", "BatchMode=yes", "--", "node1" };

    strvec_pushl(&sv, "ssh", "-o", "BatchMode=yes", NULL);
    strvec_pushl(&sv, NULL);
    strvec_pushl(&sv, "--", "node1", NULL);
    check_equal(&sv, want, 5);

    strvec_pushv(&copy, sv.v);
    check_equal(&copy, want, 5);
    cr_assert_neq(copy.v[0], sv.v[0], "pushv copies the strings");
    strvec_pushv(&copy, strvec_empty);
    check_equal(&copy, want, 5);
    strvec_clear(&sv);
    check_equal(&copy, want, 5);
    strvec_clear(&copy);
}

Test(strvec, split)
{
    static const struct {
        const char *in;
        size_t n;
        const char *want[4];
    } t[] = {
        { "", 0, { NULL } },
        { "   ", 0, { NULL } },
        { " \t\r\n", 0, { NULL } },
        { "a", 1, { "a" } },
        { "-F /etc/x", 2, { "-F", "/etc/x" } },
        { "  lead  and\ttrail  ", 3, { "lead", "and", "trail" } },
        { "a\n\nb\r\nc", 3, { "a", "b", "c" } },
        { "-o \"quoted word\"", 3, { "-o", "\"quoted", "word\"" } }, /* no quoting */
    };

    for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
        struct strvec sv = STRVEC_INIT;

        strvec_split(&sv, t[i].in);
        check_invariants(&sv);
        cr_assert_eq(sv.nr, t[i].n, "split('%s') gave %zu words", t[i].in, sv.nr);
        for (size_t j = 0; j < t[i].n; j++)
            cr_assert_str_eq(sv.v[j], t[i].want[j], "split('%s')[%zu]", t[i].in, j);
        strvec_clear(&sv);
    }
}

Test(strvec, split_appends)
{
    struct strvec sv = STRVEC_INIT;

    strvec_push(&sv, "ssh");
    strvec_split(&sv, "-F cfg");
    strvec_split(&sv, "");
    strvec_push(&sv, "host");
    check_equal(&sv, (const char *const[]){ "ssh", "-F", "cfg", "host" }, 4);
    strvec_clear(&sv);
}
