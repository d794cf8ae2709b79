/* unpack.c - the decompressing sink: recognises the format from its first
 * bytes and drives the decoder for it (unpack_priv.h); see stream.h. */
#include "unpack_priv.h"

#include "log.h"

enum probe { PROBE_NO, PROBE_MAYBE, PROBE_YES };

/* The longest signature below: bzip2's 4-byte header plus the 6-byte
 * magic of its first block. */
#define PROBE_MAX 10

static enum probe probe_bytes(const unsigned char *b, size_t len, const void *magic,
                              size_t magic_len)
{
    size_t n = len < magic_len ? len : magic_len;

    if (memcmp(b, magic, n))
        return PROBE_NO;
    return len >= magic_len ? PROBE_YES : PROBE_MAYBE;
}

/* ID1 ID2 and CM = 8 (deflate, the only method gzip defines). */
static enum probe probe_gzip(const unsigned char *b, size_t len)
{
    return probe_bytes(b, len, "\x1f\x8b\x08", 3);
}

/* "BZh" and a block size digit alone would take a text file starting with
 * "BZh1" for bzip2: the stream's first block (or, for an empty stream, its
 * end) has a 48-bit magic of its own. */
static enum probe probe_bzip2(const unsigned char *b, size_t len)
{
    static const unsigned char block[] = { 0x31, 0x41, 0x59, 0x26, 0x53, 0x59 };
    static const unsigned char eos[] = { 0x17, 0x72, 0x45, 0x38, 0x50, 0x90 };
    enum probe p = probe_bytes(b, len, "BZh", 3);
    enum probe p_block, p_eos;

    if (p != PROBE_YES)
        return p;
    if (len == 3)
        return PROBE_MAYBE;
    if (b[3] < '1' || b[3] > '9')
        return PROBE_NO;
    p_block = probe_bytes(b + 4, len - 4, block, sizeof(block));
    p_eos = probe_bytes(b + 4, len - 4, eos, sizeof(eos));
    return p_block > p_eos ? p_block : p_eos;
}

static enum probe probe_xz(const unsigned char *b, size_t len)
{
    static const unsigned char magic[] = { 0xfd, '7', 'z', 'X', 'Z', 0x00 };

    return probe_bytes(b, len, magic, sizeof(magic));
}

struct format {
    const char *name;
    enum probe (*probe)(const unsigned char *b, size_t len);
    struct unpack_decoder *(*create)(void);
};

static const struct format formats[] = {
    { "gzip", probe_gzip, unpack_gz_new },
    { "bzip2", probe_bzip2, unpack_bz2_new },
    { "xz", probe_xz, unpack_xz_new },
};

struct unpack_sink {
    struct sink s;
    struct sink *next;
    bool deciding;            /* the first bytes are still being looked at */
    const struct format *fmt; /* NULL: passing through */
    struct unpack_decoder *dec;
    unsigned char head[PROBE_MAX];
    size_t head_len;
};

/* Chooses the format once the bytes seen rule out all but one, or all.
 * `at_end`: no more bytes will come. */
static bool decide(struct unpack_sink *u, bool at_end)
{
    bool maybe = false;

    for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
        enum probe p = formats[i].probe(u->head, u->head_len);

        if (p == PROBE_YES) {
            u->fmt = &formats[i];
            u->dec = formats[i].create();
            break;
        }
        maybe |= p == PROBE_MAYBE;
    }
    if (!u->fmt && maybe && !at_end)
        return false;
    u->deciding = false;
    return true;
}

static int forward(struct unpack_sink *u, const void *buf, size_t len)
{
    if (!u->dec)
        return sink_write(u->next, buf, len);
    return u->dec->ops->feed(u->dec, buf, len, u->next);
}

/* Gathers the first bytes until the format is known, then replays them. */
static int unpack_sink_write(struct sink *s, const void *buf, size_t len)
{
    struct unpack_sink *u = (struct unpack_sink *)s;

    if (u->deciding) {
        size_t take = PROBE_MAX - u->head_len < len ? PROBE_MAX - u->head_len : len;

        memcpy(u->head + u->head_len, buf, take);
        u->head_len += take;
        if (!decide(u, false))
            return 0;
        if (forward(u, u->head, u->head_len) < 0)
            return -1;
        buf = (const unsigned char *)buf + take;
        len -= take;
    }
    return len ? forward(u, buf, len) : 0;
}

static int unpack_sink_close(struct sink *s)
{
    struct unpack_sink *u = (struct unpack_sink *)s;

    /* Fewer bytes than a signature: nothing compressed can be that short. */
    if (u->deciding) {
        decide(u, true);
        if (forward(u, u->head, u->head_len) < 0)
            return -1;
    }
    if (u->dec && u->dec->ops->finish(u->dec, u->next) < 0)
        return -1;
    return sink_close(u->next);
}

static void unpack_sink_free(struct sink *s)
{
    struct unpack_sink *u = (struct unpack_sink *)s;

    if (u->dec)
        u->dec->ops->free(u->dec);
    sink_free(u->next);
    free(u);
}

struct sink *unpack_sink_new(struct sink *next, bool detect)
{
    struct unpack_sink *u = xcalloc(1, sizeof(*u));

    u->s.write = unpack_sink_write;
    u->s.close = unpack_sink_close;
    u->s.free = unpack_sink_free;
    u->next = next;
    u->deciding = detect;
    return &u->s;
}

const char *unpack_sink_format(struct sink *s)
{
    const struct unpack_sink *u = (const struct unpack_sink *)s;

    return u->fmt ? u->fmt->name : "none";
}

/* ---- helpers for the decoders (unpack_priv.h) ---- */

void unpack_decoder_init(struct unpack_decoder *d, const struct unpack_ops *ops)
{
    d->ops = ops;
    d->buf = xmalloc(UNPACK_CHUNK);
}

void unpack_decoder_release(struct unpack_decoder *d)
{
    free(d->buf);
    d->buf = NULL;
}

int unpack_emit(struct unpack_decoder *d, size_t len, struct sink *out)
{
    return len ? sink_write(out, d->buf, len) : 0;
}

ptrdiff_t unpack_trailer(struct unpack_trailer *t, const char *format,
                         const unsigned char *in, size_t len)
{
    size_t n = 0;

    while (n < len && in[n] == 0)
        n++;
    if (n)
        t->padding = true;
    if (n < len && t->padding)
        return fail("the %s data is followed by data in another format", format);
    return (ptrdiff_t)n;
}
