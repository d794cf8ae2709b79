/* gz.c - everything qcow2c asks of zlib: the gzip decoder of unpack
 * (unpack_priv.h) and the compression of monitord messages (gz.h). */
#define ZLIB_CONST
#include "gz.h"
#include "unpack_priv.h"

#include <zlib.h>

#include "log.h"

struct gz {
    struct unpack_decoder base;
    z_stream z;
    bool in_member; /* between a member's first byte and its end */
    struct unpack_trailer trailer;
};

static int gz_error(const z_stream *z, int rc)
{
    switch (rc) {
    case Z_DATA_ERROR:
        return fail("the gzip data is corrupt: %s", z->msg ? z->msg : "invalid data");
    case Z_NEED_DICT:
        return fail("the gzip data is corrupt: it asks for a preset dictionary");
    case Z_MEM_ERROR:
        return fail("out of memory decompressing the gzip data");
    default:
        return fail("the gzip data cannot be decoded (zlib error %d)", rc);
    }
}

/* Inflates until `len` bytes are consumed or the member ends. Returns the
 * bytes consumed, or -1. */
static ptrdiff_t gz_inflate(struct gz *g, const unsigned char *in, size_t len, struct sink *out)
{
    z_stream *z = &g->z;

    z->next_in = in;
    z->avail_in = (uInt)len;
    /* Output may still be pending in zlib when a full buffer was taken, even
     * with all input consumed. */
    do {
        int rc;

        z->next_out = g->base.buf;
        z->avail_out = UNPACK_CHUNK;
        rc = inflate(z, Z_NO_FLUSH);
        if (unpack_emit(&g->base, UNPACK_CHUNK - z->avail_out, out) < 0)
            return -1;
        if (rc == Z_STREAM_END) {
            g->in_member = false;
            break;
        }
        if (rc == Z_BUF_ERROR) /* nothing left to do without more input */
            break;
        if (rc != Z_OK)
            return gz_error(z, rc);
    } while (z->avail_in || !z->avail_out);
    return (ptrdiff_t)(len - z->avail_in);
}

static int gz_feed(struct unpack_decoder *d, const unsigned char *in, size_t len,
                   struct sink *out)
{
    struct gz *g = (struct gz *)d;

    while (len) {
        ptrdiff_t n;

        if (g->in_member) {
            n = gz_inflate(g, in, len < UNPACK_MAX_IN ? len : UNPACK_MAX_IN, out);
            /* Nothing consumed, member not over: retrying would spin forever. */
            if (n == 0 && g->in_member)
                return fail("the gzip decoder makes no progress");
        } else {
            n = unpack_trailer(&g->trailer, "gzip", in, len);
            /* Not padding: another member (gzip file1 file2 > both.gz). */
            if (n == 0) {
                if (inflateReset(&g->z) != Z_OK)
                    return fail("cannot restart the gzip decoder");
                g->in_member = true;
            }
        }
        if (n < 0)
            return -1;
        in += n;
        len -= (size_t)n;
    }
    return 0;
}

static int gz_finish(struct unpack_decoder *d, struct sink *out UNUSED)
{
    struct gz *g = (struct gz *)d;

    if (g->in_member)
        return fail("the gzip data is truncated");
    return 0;
}

static void gz_free(struct unpack_decoder *d)
{
    struct gz *g = (struct gz *)d;

    inflateEnd(&g->z);
    unpack_decoder_release(&g->base);
    free(g);
}

static const struct unpack_ops gz_ops = {
    .feed = gz_feed,
    .finish = gz_finish,
    .free = gz_free,
};

struct unpack_decoder *unpack_gz_new(void)
{
    struct gz *g = xcalloc(1, sizeof(*g));
    int rc;

    unpack_decoder_init(&g->base, &gz_ops);
    /* 15: the largest window, which any gzip file fits; +16: gzip
     * framing only, no zlib or raw deflate. */
    rc = inflateInit2(&g->z, 15 + 16);
    /* Fails only without memory: as xmalloc does. */
    if (rc != Z_OK)
        die("cannot start the gzip decoder (zlib error %d)", rc);
    g->in_member = true;
    return &g->base;
}

int zlib_compress(const void *in, size_t len, struct sbuf *out)
{
    uLongf zlen = compressBound((uLong)len);

    sbuf_grow(out, zlen);
    if (compress2((Bytef *)out->buf + out->len, &zlen, (const Bytef *)in, (uLong)len,
                  Z_BEST_COMPRESSION) != Z_OK)
        return fail("zlib cannot compress %zu bytes", len);
    sbuf_setlen(out, out->len + zlen);
    return 0;
}
