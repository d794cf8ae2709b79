/* test_b64.c - strict base64 (RFC 4648), and the real DS message. */
#include "testlib.h"

#include "b64.h"

TestSuite(b64, .timeout = 30);

/* RFC 4648 section 10. */
static const char *const rfc[][2] = {
    { "", "" },
    { "f", "Zg==" },
    { "fo", "Zm8=" },
    { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" },
    { "fooba", "Zm9vYmE=" },
    { "foobar", "Zm9vYmFy" },
};

Test(b64, rfc4648_encode)
{
    for (size_t i = 0; i < ARRAY_SIZE(rfc); i++) {
        struct sbuf sb = SBUF_INIT;

        b64_encode(rfc[i][0], strlen(rfc[i][0]), &sb);
        cr_assert_str_eq(sb.buf, rfc[i][1], "encode('%s')", rfc[i][0]);
        sbuf_release(&sb);
    }
}

Test(b64, rfc4648_decode)
{
    for (size_t i = 0; i < ARRAY_SIZE(rfc); i++) {
        struct sbuf sb = SBUF_INIT;

        cr_assert_eq(b64_decode(rfc[i][1], strlen(rfc[i][1]), &sb), 0, "decode('%s'): %s",
                     rfc[i][1], fail_reason());
        cr_assert_eq(sb.len, strlen(rfc[i][0]));
        cr_assert_str_eq(sb.buf, rfc[i][0], "decode('%s')", rfc[i][1]);
        sbuf_release(&sb);
    }
}

Test(b64, whole_alphabet_and_every_byte)
{
    unsigned char all[256];
    struct sbuf enc = SBUF_INIT, dec = SBUF_INIT;

    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    b64_encode(all, sizeof(all), &enc);
    cr_assert_eq(enc.len, 344);
    cr_assert(starts_with(enc.buf, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKiss"
                                   "LS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZ"
                                   "WltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+A"),
              "%s", enc.buf);
    cr_assert(ends_with(enc.buf, "/P3+/w=="), "%s", enc.buf);
    cr_assert_eq(b64_decode(enc.buf, enc.len, &dec), 0, "%s", fail_reason());
    cr_assert_eq(dec.len, 256);
    cr_assert_eq(memcmp(dec.buf, all, 256), 0);
    sbuf_release(&enc);
    sbuf_release(&dec);

    /* '+' and '/' are the 62nd and 63rd symbols */
    cr_assert_eq(b64_decode("++//", 4, &dec), 0);
    cr_assert_eq(dec.len, 3);
    cr_assert_eq(memcmp(dec.buf, "\xfb\xef\xff", 3), 0);
    sbuf_release(&dec);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint8_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint8_t)(rng_state >> 24);
}

Test(b64, roundtrip_random_buffers)
{
    for (size_t len = 0; len < 600; len += (len < 70 ? 1 : 37)) {
        unsigned char *buf = xmalloc(len + 1);
        struct sbuf enc = SBUF_INIT, dec = SBUF_INIT;

        for (size_t i = 0; i < len; i++)
            buf[i] = rnd();
        b64_encode(buf, len, &enc);
        cr_assert_eq(enc.len, (len + 2) / 3 * 4, "encoded length for %zu bytes", len);
        for (size_t i = 0; i < enc.len; i++)
            cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
                             enc.buf[i]) &&
                          enc.buf[i],
                      "byte %zu of the encoding", i);
        cr_assert_eq(b64_decode(enc.buf, enc.len, &dec), 0, "len %zu: %s", len, fail_reason());
        cr_assert_eq(dec.len, len);
        cr_assert_eq(memcmp(dec.buf, buf, len), 0, "len %zu", len);
        sbuf_release(&enc);
        sbuf_release(&dec);
        free(buf);
    }
}

Test(b64, decode_appends)
{
    struct sbuf sb = SBUF_INIT;

    sbuf_adds(&sb, "pre:");
    cr_assert_eq(b64_decode("Zm9v", 4, &sb), 0);
    cr_assert_str_eq(sb.buf, "pre:foo");
    sbuf_release(&sb);
}

Test(b64, decode_uses_len_not_nul)
{
    struct sbuf sb = SBUF_INIT;

    cr_assert_eq(b64_decode("Zm9vYmFy", 4, &sb), 0);
    cr_assert_str_eq(sb.buf, "foo");
    sbuf_release(&sb);
    cr_assert_eq(b64_decode("Zm9v\0mFy", 8, &sb), -1, "a NUL inside the input is an error");
    sbuf_release(&sb);
}

Test(b64, line_breaks_are_tolerated)
{
    static const char *const in[] = {
        "Zm9v\nYmFy",     "Zm9v\r\nYmFy\r\n", "\nZm9vYmFy\n",
        "Zm\n9v\nYm\nFy", "Zm9vYg=\n=",       "Zm9vYg==\n",
    };
    static const char *const want[] = { "foobar", "foobar", "foobar", "foobar", "foob", "foob" };

    for (size_t i = 0; i < ARRAY_SIZE(in); i++) {
        struct sbuf sb = SBUF_INIT;

        fail_reset();
        cr_assert_eq(b64_decode(in[i], strlen(in[i]), &sb), 0, "case %zu: %s", i, fail_reason());
        cr_assert_str_eq(sb.buf, want[i], "case %zu", i);
        sbuf_release(&sb);
    }
}

struct bad {
    const char *in;
    const char *reason;
};

static const struct bad bad[] = {
    { "Zm9v!mFy", "unexpected character 0x21 at offset 4" },
    { "Zm9v YmFy", "unexpected character 0x20 at offset 4" },
    { "Zm9v\tYmFy", "unexpected character 0x09 at offset 4" },
    { "Zm9v-_Fy", "unexpected character 0x2d at offset 4" }, /* base64url is not accepted */
    { "Zm9v\xc3\xa9", "unexpected character 0xc3 at offset 4" },
    { "-", "unexpected character 0x2d at offset 0" },
    { "Z", "truncated input" },
    { "Zm", "truncated input" },
    { "Zm9", "truncated input" },
    { "Zm9vY", "truncated input" },
    { "Zg=", "truncated input" },
    { "Zm9vYmFy=", "truncated input" },
    { "Z===", "too much padding" },
    { "====", "too much padding" },
    { "Zg===", "too much padding" },
    { "Zg==Zg==", "data after padding" },
    { "Zm=9", "data after padding" },
    { "=Zm9", "data after padding" },
    { "Zg==\nZm9v", "data after padding" },
};

Test(b64, invalid_input_is_refused_with_a_reason)
{
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct sbuf sb = SBUF_INIT;

        fail_reset();
        cr_assert_eq(b64_decode(bad[i].in, strlen(bad[i].in), &sb), -1, "'%s' accepted as '%s'",
                     bad[i].in, sb.buf);
        cr_assert_str_eq(fail_reason(), bad[i].reason, "reason for '%s'", bad[i].in);
        sbuf_release(&sb);
    }
}

Test(b64, empty_input_decodes_to_nothing)
{
    struct sbuf sb = SBUF_INIT;

    cr_assert_eq(b64_decode("", 0, &sb), 0);
    cr_assert_eq(sb.len, 0);
    cr_assert_eq(b64_decode("\n\r\n", 3, &sb), 0);
    cr_assert_eq(sb.len, 0);
    sbuf_release(&sb);
}

/* The exact bytes oned wrote on each DS action's stdin decode to the
 * recorded document, byte for byte. */
Test(b64, captured_ds_messages_decode_exactly)
{
    static const char *const dirs[] = {
        "ds/clone/1", "ds/cp/1", "ds/mkfs/1", "ds/mkfs/2",    "ds/monitor/1", "ds/monitor/2",
        "ds/rm/1",    "ds/rm/2", "ds/stat/1", "tm/monitor/1", "tm/monitor/2",
    };

    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
        struct sbuf in = SBUF_INIT, want = SBUF_INIT, got = SBUF_INIT, again = SBUF_INIT;
        char *p_in = xasprintf("%s/stdin", dirs[i]);
        char *p_want = xasprintf("%s/stdin.decoded.xml", dirs[i]);

        test_read_fixture(p_in, &in);
        test_read_fixture(p_want, &want);
        cr_assert_gt(in.len, 1000, "%s", p_in);
        cr_assert_null(memchr(in.buf, '\n', in.len), "oned sends one line, no newline");
        cr_assert_eq(b64_decode(in.buf, in.len, &got), 0, "%s: %s", p_in, fail_reason());
        cr_assert_eq(got.len, want.len, "%s: %zu bytes, want %zu", p_in, got.len, want.len);
        cr_assert_eq(memcmp(got.buf, want.buf, want.len), 0, "%s differs", p_in);
        cr_assert(starts_with(got.buf, "<DS_DRIVER_ACTION_DATA>"));
        /* and our encoder gives oned's text back */
        b64_encode(got.buf, got.len, &again);
        cr_assert_eq(again.len, in.len);
        cr_assert_eq(memcmp(again.buf, in.buf, in.len), 0, "%s: re-encoding differs", p_in);
        sbuf_release(&in);
        sbuf_release(&want);
        sbuf_release(&got);
        sbuf_release(&again);
        free(p_in);
        free(p_want);
    }
}

/* A human pasting the message wraps it at 76 columns. */
Test(b64, captured_message_wrapped_at_76_columns)
{
    struct sbuf in = SBUF_INIT, wrapped = SBUF_INIT, want = SBUF_INIT, got = SBUF_INIT;

    test_read_fixture("ds/cp/1/stdin", &in);
    test_read_fixture("ds/cp/1/stdin.decoded.xml", &want);
    for (size_t i = 0; i < in.len; i += 76) {
        sbuf_add(&wrapped, in.buf + i, in.len - i < 76 ? in.len - i : 76);
        sbuf_adds(&wrapped, "\n");
    }
    cr_assert_eq(b64_decode(wrapped.buf, wrapped.len, &got), 0, "%s", fail_reason());
    cr_assert_eq(got.len, want.len);
    cr_assert_eq(memcmp(got.buf, want.buf, want.len), 0);
    sbuf_release(&in);
    sbuf_release(&wrapped);
    sbuf_release(&want);
    sbuf_release(&got);
}

/* One bad byte anywhere in a real message is caught, with its offset. */
Test(b64, corruption_in_a_real_message_is_located)
{
    struct sbuf in = SBUF_INIT, got = SBUF_INIT;
    char want[64];

    test_read_fixture("ds/rm/1/stdin", &in);
    in.buf[1234] = '*';
    cr_assert_eq(b64_decode(in.buf, in.len, &got), -1);
    snprintf(want, sizeof(want), "unexpected character 0x2a at offset %d", 1234);
    cr_assert_str_eq(fail_reason(), want);
    sbuf_release(&in);
    sbuf_release(&got);

    fail_reset();
    test_read_fixture("ds/rm/1/stdin", &in);
    cr_assert_eq(b64_decode(in.buf, in.len - 1, &got), -1, "a cut message is refused");
    cr_assert_str_eq(fail_reason(), "truncated input");
    sbuf_release(&in);
    sbuf_release(&got);
}
