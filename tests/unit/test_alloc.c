/* test_alloc.c - the allocation helpers and the small string tests of
 * util.h (starts_with, ends_with, is_yes, is_no). */
#include "testlib.h"

TestSuite(alloc, .timeout = 30);

Test(alloc, starts_with)
{
    static const struct {
        const char *s, *prefix;
        bool want;
    } t[] = {
        { "abc", "ab", true },
        { "abc", "abc", true },
        { "abc", "", true },
        { "", "", true },
        { "ab", "abc", false },
        { "abc", "b", false },
        { "", "a", false },
        { "Abc", "a", false },
        { "export KEY=1", "export ", true },
        { "export", "export ", false },
    };

    for (size_t i = 0; i < ARRAY_SIZE(t); i++)
        cr_assert_eq(starts_with(t[i].s, t[i].prefix), t[i].want, "starts_with('%s', '%s')", t[i].s,
                     t[i].prefix);
}

Test(alloc, ends_with)
{
    static const struct {
        const char *s, *suffix;
        bool want;
    } t[] = {
        { "disk.0.part", ".part", true },
        { "abc", "abc", true },
        { "abc", "", true },
        { "", "", true },
        { "bc", "abc", false },
        { "abc", "b", false },
        { "", "a", false },
        { "abC", "c", false },
        { ".part", "x.part", false },
    };

    for (size_t i = 0; i < ARRAY_SIZE(t); i++)
        cr_assert_eq(ends_with(t[i].s, t[i].suffix), t[i].want, "ends_with('%s', '%s')", t[i].s,
                     t[i].suffix);
}

static const char *const yes_words[] = { "yes",  "YES", "Yes", "yEs", "true", "TRUE",
                                         "True", "1",   "on",  "ON",  "On" };
static const char *const no_words[] = { "no",    "NO", "No",  "false", "FALSE",
                                        "False", "0",  "off", "OFF",   "Off" };
static const char *const neither[] = { "",   " yes", "yes ",  "y",    "n",    "2",
                                       "01", "00",   "yess",  "nope", "-1",   "true1",
                                       "o",  "of",   "YES\n", "\tno", "none", "null" };

Test(alloc, is_yes_and_is_no)
{
    for (size_t i = 0; i < ARRAY_SIZE(yes_words); i++) {
        cr_assert(is_yes(yes_words[i]), "is_yes('%s')", yes_words[i]);
        cr_assert(!is_no(yes_words[i]), "is_no('%s')", yes_words[i]);
    }
    for (size_t i = 0; i < ARRAY_SIZE(no_words); i++) {
        cr_assert(is_no(no_words[i]), "is_no('%s')", no_words[i]);
        cr_assert(!is_yes(no_words[i]), "is_yes('%s')", no_words[i]);
    }
    for (size_t i = 0; i < ARRAY_SIZE(neither); i++) {
        cr_assert(!is_yes(neither[i]), "is_yes('%s')", neither[i]);
        cr_assert(!is_no(neither[i]), "is_no('%s')", neither[i]);
    }
    cr_assert(!is_yes(NULL));
    cr_assert(!is_no(NULL));
}

Test(alloc, streq_and_str_empty)
{
    cr_assert(streq("a", "a"));
    cr_assert(!streq("a", "b"));
    cr_assert(!streq(NULL, "a"));
    cr_assert(!streq("a", NULL));
    cr_assert(!streq(NULL, NULL));
    cr_assert(str_empty(NULL));
    cr_assert(str_empty(""));
    cr_assert(!str_empty(" "));
}

Test(alloc, zero_sizes_give_usable_pointers)
{
    void *a = xmalloc(0), *b = xcalloc(0, 0), *c = xcalloc(0, 8), *d = xrealloc(NULL, 0);

    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_not_null(c);
    cr_assert_not_null(d);
    free(a);
    free(b);
    free(c);
    free(d);
}

Test(alloc, calloc_zeroes_and_realloc_keeps)
{
    unsigned char *p = xcalloc(100, 3);
    char *r;

    for (size_t i = 0; i < 300; i++)
        cr_assert_eq(p[i], 0);
    free(p);
    r = xrealloc(NULL, 4);
    memcpy(r, "abc", 4);
    r = xrealloc(r, 100000);
    cr_assert_str_eq(r, "abc");
    free(r);
}

Test(alloc, strings)
{
    char *a = xstrdup("hello"), *b = xstrndup("hello", 3), *c = xstrndup("hi", 10);
    char *d = xasprintf("%s-%05d-%c", "x", 42, 'z'), *e = xasprintf("%s", "");

    cr_assert_str_eq(a, "hello");
    cr_assert_str_eq(b, "hel");
    cr_assert_str_eq(c, "hi");
    cr_assert_str_eq(d, "x-00042-z");
    cr_assert_str_eq(e, "");
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
}

Test(alloc, array_grow)
{
    int *v = NULL;
    size_t nr = 0, alloc = 0;

    for (int i = 0; i < 10000; i++) {
        ALLOC_GROW(v, nr + 1, alloc);
        cr_assert_geq(alloc, nr + 1);
        v[nr++] = i;
    }
    for (int i = 0; i < 10000; i++)
        cr_assert_eq(v[i], i);
    free(v);
}
