/* unpack_xz.c - the xz decoder, with liblzma; see unpack_priv.h. */
#include "unpack_priv.h"

#include <lzma.h>

#include "log.h"

/* The decoder's memory is the dictionary size the file asks for: 64 MiB
 * for xz -9, up to 1.5 GiB for a hand-tuned file. Beyond this a file is
 * refused rather than allowed to exhaust the front-end. */
#define XZ_MEMLIMIT ((uint64_t)1 << 30)

struct xz {
    struct unpack_decoder base;
    lzma_stream s;
};

static int xz_error(lzma_ret rc)
{
    switch (rc) {
    case LZMA_DATA_ERROR:
        return fail("the xz data is corrupt");
    case LZMA_FORMAT_ERROR:
        return fail("the xz data is corrupt: bad stream signature");
    case LZMA_OPTIONS_ERROR:
        return fail("the xz data uses options this liblzma does not support");
    case LZMA_BUF_ERROR:
        return fail("the xz data is truncated");
    case LZMA_MEMLIMIT_ERROR:
        return fail("the xz data needs more than %llu MiB of memory to decompress",
                    (unsigned long long)(XZ_MEMLIMIT >> 20));
    case LZMA_MEM_ERROR:
        return fail("out of memory decompressing the xz data");
    default:
        return fail("the xz data cannot be decoded (liblzma error %d)", (int)rc);
    }
}

/* One lzma_code() step into a fresh output buffer. */
static lzma_ret xz_step(struct xz *x, lzma_action action, struct sink *out, bool *sink_failed)
{
    lzma_ret rc;

    x->s.next_out = x->base.buf;
    x->s.avail_out = UNPACK_CHUNK;
    rc = lzma_code(&x->s, action);
    *sink_failed = unpack_emit(&x->base, UNPACK_CHUNK - x->s.avail_out, out) < 0;
    return rc;
}

static int xz_feed(struct unpack_decoder *d, const unsigned char *in, size_t len,
                   struct sink *out)
{
    struct xz *x = (struct xz *)d;
    bool sink_failed;

    x->s.next_in = in;
    x->s.avail_in = len;
    /* Output may still be pending in liblzma when a full buffer was taken,
     * even with all input consumed. */
    do {
        lzma_ret rc = xz_step(x, LZMA_RUN, out, &sink_failed);

        if (sink_failed)
            return -1;
        /* BUF_ERROR: no progress without more input, which is not an
         * error until finish(). */
        if (rc == LZMA_BUF_ERROR)
            break;
        if (rc != LZMA_OK)
            return xz_error(rc);
    } while (x->s.avail_in || !x->s.avail_out);
    return 0;
}

/* With LZMA_CONCATENATED the end is only known at the end of input: the
 * decoder then checks that it is not inside a stream. */
static int xz_finish(struct unpack_decoder *d, struct sink *out)
{
    struct xz *x = (struct xz *)d;
    bool sink_failed;

    x->s.next_in = NULL;
    x->s.avail_in = 0;
    for (;;) {
        lzma_ret rc = xz_step(x, LZMA_FINISH, out, &sink_failed);

        if (sink_failed)
            return -1;
        if (rc == LZMA_STREAM_END)
            return 0;
        if (rc != LZMA_OK)
            return xz_error(rc);
    }
}

static void xz_free(struct unpack_decoder *d)
{
    struct xz *x = (struct xz *)d;

    lzma_end(&x->s);
    unpack_decoder_release(&x->base);
    free(x);
}

static const struct unpack_ops xz_ops = {
    .feed = xz_feed,
    .finish = xz_finish,
    .free = xz_free,
};

struct unpack_decoder *unpack_xz_new(void)
{
    struct xz *x = xcalloc(1, sizeof(*x));
    lzma_stream init = LZMA_STREAM_INIT;

    unpack_decoder_init(&x->base, &xz_ops);
    x->s = init;
    /* CONCATENATED: xz file1 file2 > both.xz, and the stream padding the
     * format allows between and after streams. */
    if (lzma_stream_decoder(&x->s, XZ_MEMLIMIT, LZMA_CONCATENATED) != LZMA_OK)
        die("out of memory starting the xz decoder");
    return &x->base;
}
