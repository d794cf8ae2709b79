/* test_unpack.c - the decompressing sink against files made by the real
 * gzip, bzip2 and xz programs. */
#include "testlib.h"

#include <sys/resource.h>
#include <zlib.h>

#include "run.h"
#include "stream.h"
#include "unpack_priv.h"

TestSuite(unpack, .timeout = 120);

/* ---- a sink that keeps everything, and how it was written ---- */

struct capture {
    struct sink s;
    struct sbuf data;
    bool keep;          /* false: only count (large outputs) */
    size_t max_write;
    bool closed;
    uint64_t fail_after; /* refuse a write that goes past this many bytes; 0 = never */
};

static int capture_write(struct sink *s, const void *buf, size_t len)
{
    struct capture *c = (struct capture *)s;

    if (c->fail_after && s->bytes + len > c->fail_after)
        return fail("the capture is full");
    if (len > c->max_write)
        c->max_write = len;
    if (c->keep)
        sbuf_add(&c->data, buf, len);
    return 0;
}

static int capture_close(struct sink *s)
{
    ((struct capture *)s)->closed = true;
    return 0;
}

static void capture_free(struct sink *s)
{
    struct capture *c = (struct capture *)s;

    sbuf_release(&c->data);
    free(c);
}

static struct capture *capture_new(void)
{
    struct capture *c = xcalloc(1, sizeof(*c));

    c->s.write = capture_write;
    c->s.close = capture_close;
    c->s.free = capture_free;
    sbuf_init(&c->data);
    c->keep = true;
    return c;
}

/* ---- data ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fill_random(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(rng() >> 32);
}

/* Something like a disk image: random stretches (incompressible), long
 * zero runs (holes) and repetitive text, `len` bytes. */
static unsigned char *image_like(size_t len)
{
    unsigned char *p = xcalloc(1, len);
    static const char text[] = "qcow2c unpack test: the quick brown fox jumps over the lazy dog\n";

    for (size_t off = 0; off < len; off += 1024 * 1024) {
        size_t n = len - off < 1024 * 1024 ? len - off : 1024 * 1024;

        switch ((off >> 20) % 4) {
        case 0:
            fill_random(p + off, n);
            break;
        case 1:
            break; /* zeros */
        case 2:
            for (size_t i = 0; i < n; i++)
                p[off + i] = (unsigned char)text[i % (sizeof(text) - 1)];
            break;
        default:
            fill_random(p + off, n / 3); /* a partly used block */
            break;
        }
    }
    return p;
}

/* Runs `prog args... < in` and returns its standard output. */
static void compress_with(struct sbuf *out, const char *prog, const char *opt, const void *in,
                          size_t len)
{
    struct cmd c = CMD_INIT;

    strvec_pushl(&c.args, prog, "-c", NULL);
    if (opt)
        strvec_push(&c.args, opt);
    c.in = len ? in : "";
    c.in_len = len;
    c.out_max = 256u << 20;
    c.timeout_s = 100;
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    sbuf_add(out, c.out.buf, c.out.len);
    cmd_release(&c);
}

/* ---- feeding ---- */

enum feed_mode { FEED_WHOLE, FEED_DRIBBLE };

/* Writes `len` bytes into `s`: at once, or in pieces of 1 byte first (to
 * split the signature) and then of varying sizes. Returns the first
 * failing write's result, or sink_close's. */
static int feed(struct sink *s, const void *data, size_t len, enum feed_mode mode)
{
    const unsigned char *p = data;
    size_t off = 0;

    if (mode == FEED_WHOLE)
        return sink_write(s, p, len) < 0 ? -1 : sink_close(s);
    for (unsigned i = 0; off < len; i++) {
        size_t n = i < 16 ? 1 : 1 + rng() % 70000;

        if (n > len - off)
            n = len - off;
        if (sink_write(s, p + off, n) < 0)
            return -1;
        off += n;
    }
    return sink_close(s);
}

/* Decompresses `z` and checks that the result is `plain`. */
static void check_roundtrip(const struct sbuf *z, const void *plain, size_t plain_len,
                            const char *format, enum feed_mode mode)
{
    struct capture *out = capture_new();
    struct sink *u = unpack_sink_new(&out->s, true);

    cr_assert_eq(feed(u, z->buf, z->len, mode), 0, "%s: %s", format, fail_reason());
    cr_assert_str_eq(unpack_sink_format(u), format);
    cr_assert(out->closed, "close must reach the next sink");
    cr_assert_eq(u->bytes, z->len);
    cr_assert_eq(out->s.bytes, plain_len, "%s: %llu bytes out, %zu expected", format,
                 (unsigned long long)out->s.bytes, plain_len);
    cr_assert_eq(out->data.len, plain_len);
    cr_assert(plain_len == 0 || memcmp(out->data.buf, plain, plain_len) == 0,
              "%s: decoded data differs", format);
    cr_assert_leq(out->max_write, UNPACK_CHUNK, "%s: a write of %zu bytes", format,
                  out->max_write);
    sink_free(u);
}

/* Decompression must fail, naming the format and saying `what`. */
static void check_fails(const void *z, size_t len, const char *format, const char *what)
{
    struct capture *out = capture_new();
    struct sink *u = unpack_sink_new(&out->s, true);
    char *name = xasprintf("the %s data", format);

    fail_reset();
    cr_assert_eq(feed(u, z, len, FEED_WHOLE), -1, "%s: accepted", format);
    cr_assert(strstr(fail_reason(), name), "reason: %s", fail_reason());
    if (what)
        cr_assert(strstr(fail_reason(), what), "reason: %s", fail_reason());
    cr_assert_null(strchr(fail_reason(), '\n'));
    cr_assert_not(out->closed, "the next sink must not be closed after a failure");
    free(name);
    sink_free(u);
}

struct tool {
    const char *prog;
    const char *opt;
    const char *format;
    size_t signature; /* bytes that identify the format */
};

static const struct tool tools[] = {
    { "gzip", NULL, "gzip", 3 },
    { "bzip2", NULL, "bzip2", 10 },
    { "xz", "-3", "xz", 6 },
};

#define MIB (1024u * 1024u)

/* ---- round trips ---- */

static void roundtrip(const struct tool *t, size_t len, enum feed_mode mode)
{
    unsigned char *plain = image_like(len);
    struct sbuf z = SBUF_INIT;

    compress_with(&z, t->prog, t->opt, plain, len);
    cr_assert_lt(z.len, len, "%s did not compress", t->prog);
    check_roundtrip(&z, plain, len, t->format, mode);
    sbuf_release(&z);
    free(plain);
}

Test(unpack, gzip_round_trip)
{
    roundtrip(&tools[0], 8 * MIB + 123, FEED_WHOLE);
}

Test(unpack, bzip2_round_trip)
{
    roundtrip(&tools[1], 6 * MIB + 7, FEED_WHOLE);
}

Test(unpack, xz_round_trip)
{
    roundtrip(&tools[2], 8 * MIB + 4095, FEED_WHOLE);
}

Test(unpack, round_trip_in_small_pieces)
{
    for (size_t i = 0; i < ARRAY_SIZE(tools); i++)
        roundtrip(&tools[i], 2 * MIB + 1, FEED_DRIBBLE);
}

Test(unpack, random_data_round_trip)
{
    size_t len = 3 * MIB;
    unsigned char *plain = xmalloc(len);

    fill_random(plain, len);
    for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
        struct sbuf z = SBUF_INIT;

        compress_with(&z, tools[i].prog, tools[i].opt, plain, len);
        check_roundtrip(&z, plain, len, tools[i].format, FEED_WHOLE);
        sbuf_release(&z);
    }
    free(plain);
}

Test(unpack, empty_streams)
{
    for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
        struct sbuf z = SBUF_INIT;

        compress_with(&z, tools[i].prog, NULL, NULL, 0);
        check_roundtrip(&z, "", 0, tools[i].format, FEED_WHOLE);
        sbuf_release(&z);
    }
}

/* gzip a b > ab.gz, pbzip2, xz -T: one file, several streams. */
Test(unpack, concatenated_streams)
{
    size_t la = MIB + 17, lb = 2 * MIB;
    unsigned char *a = image_like(la);
    unsigned char *b = xmalloc(lb);
    unsigned char *ab = xmalloc(la + lb);

    fill_random(b, lb);
    memcpy(ab, a, la);
    memcpy(ab + la, b, lb);
    for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
        struct sbuf z = SBUF_INIT;

        compress_with(&z, tools[i].prog, tools[i].opt, a, la);
        compress_with(&z, tools[i].prog, tools[i].opt, NULL, 0);
        compress_with(&z, tools[i].prog, tools[i].opt, b, lb);
        check_roundtrip(&z, ab, la + lb, tools[i].format, FEED_WHOLE);
        check_roundtrip(&z, ab, la + lb, tools[i].format, FEED_DRIBBLE);
        sbuf_release(&z);
    }
    free(a);
    free(b);
    free(ab);
}

/* Tapes and block devices pad with zeros; gzip(1) ignores them, and xz
 * defines stream padding (a multiple of 4 bytes). */
Test(unpack, zero_padding_after_the_end)
{
    static const char plain[] = "padded";
    static const char zeros[4096];

    for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
        struct sbuf z = SBUF_INIT;

        compress_with(&z, tools[i].prog, NULL, plain, strlen(plain));
        sbuf_add(&z, zeros, sizeof(zeros));
        check_roundtrip(&z, plain, strlen(plain), tools[i].format, FEED_WHOLE);
        sbuf_release(&z);
    }
}

Test(unpack, data_after_padding_fails)
{
    static const char zeros[64];

    for (size_t i = 0; i < 2; i++) { /* gzip, bzip2: xz is below */
        struct sbuf z = SBUF_INIT;

        compress_with(&z, tools[i].prog, NULL, "x", 1);
        sbuf_add(&z, zeros, sizeof(zeros));
        compress_with(&z, tools[i].prog, NULL, "y", 1);
        check_fails(z.buf, z.len, tools[i].format, "followed by data in another format");
        sbuf_release(&z);
    }
}

Test(unpack, xz_padding_must_be_a_multiple_of_four)
{
    struct sbuf z = SBUF_INIT;

    compress_with(&z, "xz", NULL, "x", 1);
    sbuf_add(&z, "\0\0\0", 3);
    check_fails(z.buf, z.len, "xz", "corrupt");
    sbuf_release(&z);
}

Test(unpack, garbage_after_the_end_fails)
{
    for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
        struct sbuf z = SBUF_INIT;

        compress_with(&z, tools[i].prog, NULL, "hello", 5);
        sbuf_adds(&z, "trailing garbage");
        check_fails(z.buf, z.len, tools[i].format, "corrupt");
        sbuf_release(&z);
    }
}

/* ---- damaged input ---- */

Test(unpack, truncated_streams_fail)
{
    size_t len = MIB;
    unsigned char *plain = image_like(len);

    for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
        struct sbuf z = SBUF_INIT;
        size_t cuts[4];

        compress_with(&z, tools[i].prog, tools[i].opt, plain, len);
        cuts[0] = z.len - 1;                /* the last byte of the trailer */
        cuts[1] = z.len / 2;                /* in the middle */
        cuts[2] = tools[i].signature + 2;   /* just past the signature */
        cuts[3] = tools[i].signature;       /* a signature alone */
        for (size_t c = 0; c < ARRAY_SIZE(cuts); c++)
            check_fails(z.buf, cuts[c], tools[i].format, "is truncated");
        sbuf_release(&z);
    }
    free(plain);
}

/* A flipped bit in the data: caught by the decoder or by the checksum. */
Test(unpack, corrupt_streams_fail)
{
    size_t len = MIB;
    unsigned char *plain = xmalloc(len);

    fill_random(plain, len);
    for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
        struct sbuf z = SBUF_INIT;

        compress_with(&z, tools[i].prog, tools[i].opt, plain, len);
        z.buf[z.len / 2] ^= 0x10;
        check_fails(z.buf, z.len, tools[i].format, "is corrupt");
        sbuf_release(&z);
    }
    free(plain);
}

/* The last 8 bytes of a gzip member are CRC32 and ISIZE of the data. */
Test(unpack, gzip_checksum_mismatch_fails)
{
    struct sbuf z = SBUF_INIT;

    compress_with(&z, "gzip", NULL, "some data", 9);
    z.buf[z.len - 8] ^= 1;
    check_fails(z.buf, z.len, "gzip", "is corrupt");
    sbuf_release(&z);
}

Test(unpack, bad_header_fails)
{
    /* gzip with a reserved flag bit set */
    static const unsigned char gz[] = { 0x1f, 0x8b, 0x08, 0xe0, 0, 0, 0, 0, 0, 3, 1, 2, 3 };

    check_fails(gz, sizeof(gz), "gzip", "is corrupt");
}

/* The failure of the sink after the decoder is reported as is. */
Test(unpack, next_sink_failure_propagates)
{
    size_t len = 4 * MIB;
    unsigned char *plain = image_like(len);
    struct sbuf z = SBUF_INIT;

    for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
        struct capture *out = capture_new();
        struct sink *u = unpack_sink_new(&out->s, true);

        sbuf_reset(&z);
        compress_with(&z, tools[i].prog, tools[i].opt, plain, len);
        out->fail_after = MIB;
        fail_reset();
        cr_assert_eq(feed(u, z.buf, z.len, FEED_WHOLE), -1);
        cr_assert_str_eq(fail_reason(), "the capture is full");
        cr_assert_leq(out->s.bytes, MIB);
        sink_free(u);
    }
    sbuf_release(&z);
    free(plain);
}

/* ---- what is not compressed ---- */

static void check_passthrough(const void *data, size_t len, bool detect, enum feed_mode mode)
{
    struct capture *out = capture_new();
    struct sink *u = unpack_sink_new(&out->s, detect);

    cr_assert_eq(feed(u, data, len, mode), 0, "%s", fail_reason());
    cr_assert_str_eq(unpack_sink_format(u), "none");
    cr_assert(out->closed);
    cr_assert_eq(out->data.len, len, "%zu bytes out of %zu", out->data.len, len);
    cr_assert(len == 0 || memcmp(out->data.buf, data, len) == 0);
    sink_free(u);
}

Test(unpack, other_formats_pass_through)
{
    size_t len = 3 * MIB + 5;
    unsigned char *data = image_like(len);

    memcpy(data, "QFI\xfb\0\0\0\3", 8); /* a qcow2 header */
    check_passthrough(data, len, true, FEED_WHOLE);
    check_passthrough(data, len, true, FEED_DRIBBLE);
    free(data);
}

/* Shorter than any signature, or its beginning only: nothing to decode. */
Test(unpack, tiny_inputs_pass_through)
{
    static const char *const tiny[] = { "", "x", "\x1f", "\x1f\x8b", "BZ", "BZh", "BZh9",
                                        "BZh91AY&S", "\xfd", "\xfd" "7zX", "\xfd" "7zXZ" };

    for (size_t i = 0; i < ARRAY_SIZE(tiny); i++) {
        size_t len = strlen(tiny[i]);

        check_passthrough(tiny[i], len, true, FEED_WHOLE);
        check_passthrough(tiny[i], len, true, FEED_DRIBBLE);
    }
}

/* Near misses: text starting like a signature. */
Test(unpack, near_signatures_pass_through)
{
    static const char *const texts[] = { "BZh9 is not bzip2 data, just text",
                                         "\x1f\x8b\x07 deflate is method 8",
                                         "BZhx no block size digit",
                                         "BZh01AY&SY block size 0 does not exist" };

    for (size_t i = 0; i < ARRAY_SIZE(texts); i++)
        check_passthrough(texts[i], strlen(texts[i]), true, FEED_DRIBBLE);
}

Test(unpack, no_detection_passes_compressed_data_through)
{
    struct sbuf z = SBUF_INIT;

    compress_with(&z, "gzip", NULL, "compressed", 10);
    check_passthrough(z.buf, z.len, false, FEED_WHOLE);
    sbuf_release(&z);
}

/* stat reads the format and the head without closing the chain. */
Test(unpack, format_and_data_known_before_close)
{
    struct sbuf z = SBUF_INIT;
    struct sink *head = head_sink_new(64);
    struct sink *u = unpack_sink_new(head, true);
    const char *plain = "the image header";
    const void *data;
    size_t len;

    compress_with(&z, "xz", NULL, plain, strlen(plain));
    cr_assert_str_eq(unpack_sink_format(u), "none");
    cr_assert_eq(sink_write(u, z.buf, 6), 0);
    cr_assert_str_eq(unpack_sink_format(u), "xz");
    cr_assert_eq(sink_write(u, z.buf + 6, z.len - 6), 0);
    data = head_sink_data(head, &len);
    cr_assert_eq(len, strlen(plain), "decoded before close: %zu bytes", len);
    cr_assert(memcmp(data, plain, len) == 0);
    sink_free(u);

    head = head_sink_new(64);
    u = unpack_sink_new(head, true);
    cr_assert_eq(sink_write(u, "Q", 1), 0);
    cr_assert_str_eq(unpack_sink_format(u), "none");
    head_sink_data(head, &len);
    cr_assert_eq(len, 1, "a byte that starts no signature goes through at once");
    sink_free(u);
    sbuf_release(&z);
}

/* ---- a decompression bomb streams through in bounded memory ---- */

/* zlib's own gzip writer: 512 MiB of zeros never exist in memory. */
static void gzip_zeros(struct sbuf *z, size_t len)
{
    static const unsigned char zeros[64 * 1024];
    unsigned char out[16 * 1024];
    z_stream s = { 0 };
    int flush;

    cr_assert_eq(deflateInit2(&s, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
    do {
        size_t n = len < sizeof(zeros) ? len : sizeof(zeros);

        len -= n;
        flush = len ? Z_NO_FLUSH : Z_FINISH;
        s.next_in = (unsigned char *)(uintptr_t)zeros;
        s.avail_in = (uInt)n;
        do {
            s.next_out = out;
            s.avail_out = sizeof(out);
            cr_assert_neq(deflate(&s, flush), Z_STREAM_ERROR);
            sbuf_add(z, out, sizeof(out) - s.avail_out);
        } while (s.avail_out == 0);
    } while (flush != Z_FINISH);
    deflateEnd(&s);
}

static long max_rss_kib(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

Test(unpack, bomb_streams_in_bounded_memory)
{
    size_t len = 512u * MIB;
    struct sbuf z = SBUF_INIT;
    struct capture *out = capture_new();
    struct sink *u = unpack_sink_new(&out->s, true);
    long rss_before;

    gzip_zeros(&z, len);
    cr_assert_lt(z.len, 1 * MIB);
    rss_before = max_rss_kib();
    out->keep = false;
    cr_assert_eq(feed(u, z.buf, z.len, FEED_WHOLE), 0, "%s", fail_reason());
    cr_assert_eq(out->s.bytes, len);
    cr_assert_leq(out->max_write, UNPACK_CHUNK);
    cr_assert_lt(max_rss_kib() - rss_before, 32 * 1024, "peak RSS grew by %ld KiB",
                 max_rss_kib() - rss_before);
    sink_free(u);
    sbuf_release(&z);
}

/* Every prefix and every one-byte corruption of a small file: never a
 * crash or a hang, and a prefix is never taken for the whole. */
Test(unpack, every_cut_and_every_flipped_byte)
{
    static const char plain[] = "a small file, compressed, then cut and damaged everywhere; "
                                "a small file, compressed, then cut and damaged everywhere";

    for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
        struct sbuf z = SBUF_INIT;
        char *name = xasprintf("the %s data", tools[i].format);

        compress_with(&z, tools[i].prog, NULL, plain, strlen(plain));
        for (size_t cut = 0; cut < z.len; cut++) {
            struct sink *u = unpack_sink_new(null_sink_new(), true);
            int rc;

            fail_reset();
            rc = feed(u, z.buf, cut, FEED_WHOLE);
            if (cut < tools[i].signature) {
                cr_assert_eq(rc, 0, "%s cut at %zu: %s", tools[i].format, cut, fail_reason());
                cr_assert_str_eq(unpack_sink_format(u), "none");
            } else {
                cr_assert_eq(rc, -1, "%s cut at %zu was accepted", tools[i].format, cut);
                cr_assert(strstr(fail_reason(), name), "%s", fail_reason());
            }
            sink_free(u);
        }
        for (size_t pos = 0; pos < z.len; pos++) {
            struct sink *u = unpack_sink_new(null_sink_new(), true);

            z.buf[pos] ^= 0xff;
            fail_reset();
            if (feed(u, z.buf, z.len, FEED_DRIBBLE) < 0 && pos >= tools[i].signature)
                cr_assert(strstr(fail_reason(), name), "byte %zu: %s", pos, fail_reason());
            z.buf[pos] ^= 0xff;
            sink_free(u);
        }
        free(name);
        sbuf_release(&z);
    }
}
