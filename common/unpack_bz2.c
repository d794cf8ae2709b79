/* unpack_bz2.c - the bzip2 decoder, with libbz2; see unpack_priv.h. */
#include "unpack_priv.h"

#include <bzlib.h>

#include "log.h"

struct bz2 {
    struct unpack_decoder base;
    bz_stream b;
    bool in_stream; /* libbz2 is set up and the stream has not ended */
    struct unpack_trailer trailer;
};

static int bz2_error(int rc)
{
    switch (rc) {
    case BZ_DATA_ERROR:
        return fail("the bzip2 data is corrupt");
    case BZ_DATA_ERROR_MAGIC:
        return fail("the bzip2 data is corrupt: bad stream signature");
    case BZ_MEM_ERROR:
        return fail("out of memory decompressing the bzip2 data");
    default:
        return fail("the bzip2 data cannot be decoded (libbz2 error %d)", rc);
    }
}

/* Returns libbz2's code: BZ_OK, or BZ_MEM_ERROR in practice. */
static int bz2_start(struct bz2 *z)
{
    int rc;

    memset(&z->b, 0, sizeof(z->b));
    /* small = 0: the fast decoder, about 3.7 MB at most. */
    rc = BZ2_bzDecompressInit(&z->b, 0, 0);
    z->in_stream = rc == BZ_OK;
    return rc;
}

static void bz2_end(struct bz2 *z)
{
    if (z->in_stream)
        BZ2_bzDecompressEnd(&z->b);
    z->in_stream = false;
}

/* Decodes until `len` bytes are consumed or the stream ends. Returns the
 * bytes consumed, or -1. */
static ptrdiff_t bz2_decode(struct bz2 *z, const unsigned char *in, size_t len, struct sink *out)
{
    bz_stream *b = &z->b;

    /* libbz2 never writes through next_in; its type just lacks the const. */
    b->next_in = (char *)(uintptr_t)in;
    b->avail_in = (unsigned)len;
    do {
        int rc;

        b->next_out = (char *)z->base.buf;
        b->avail_out = UNPACK_CHUNK;
        rc = BZ2_bzDecompress(b);
        if (unpack_emit(&z->base, UNPACK_CHUNK - b->avail_out, out) < 0)
            return -1;
        if (rc == BZ_STREAM_END) {
            size_t used = len - b->avail_in;

            bz2_end(z);
            return (ptrdiff_t)used;
        }
        if (rc != BZ_OK)
            return bz2_error(rc);
    } while (b->avail_in || !b->avail_out);
    return (ptrdiff_t)(len - b->avail_in);
}

static int bz2_feed(struct unpack_decoder *d, const unsigned char *in, size_t len,
                    struct sink *out)
{
    struct bz2 *z = (struct bz2 *)d;

    while (len) {
        ptrdiff_t n;

        if (z->in_stream) {
            n = bz2_decode(z, in, len < UNPACK_MAX_IN ? len : UNPACK_MAX_IN, out);
            /* Nothing consumed, stream not over: retrying would spin forever. */
            if (n == 0 && z->in_stream)
                return fail("the bzip2 decoder makes no progress");
        } else {
            n = unpack_trailer(&z->trailer, "bzip2", in, len);
            /* Not padding: another stream (pbzip2 writes many). */
            if (n == 0) {
                int rc = bz2_start(z);

                if (rc != BZ_OK)
                    return bz2_error(rc);
            }
        }
        if (n < 0)
            return -1;
        in += n;
        len -= (size_t)n;
    }
    return 0;
}

static int bz2_finish(struct unpack_decoder *d, struct sink *out UNUSED)
{
    struct bz2 *z = (struct bz2 *)d;

    if (z->in_stream)
        return fail("the bzip2 data is truncated");
    return 0;
}

static void bz2_free(struct unpack_decoder *d)
{
    struct bz2 *z = (struct bz2 *)d;

    bz2_end(z);
    unpack_decoder_release(&z->base);
    free(z);
}

static const struct unpack_ops bz2_ops = {
    .feed = bz2_feed,
    .finish = bz2_finish,
    .free = bz2_free,
};

struct unpack_decoder *unpack_bz2_new(void)
{
    struct bz2 *z = xcalloc(1, sizeof(*z));

    unpack_decoder_init(&z->base, &bz2_ops);
    /* Fails only without memory: as xmalloc does. */
    if (bz2_start(z) != BZ_OK)
        die("out of memory starting the bzip2 decoder");
    return &z->base;
}
