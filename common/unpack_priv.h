/*
 * unpack_priv.h - what unpack.c expects of a decompressor: one per library
 * (gz.c: zlib, unpack_bz2.c: libbz2, unpack_xz.c: liblzma).
 *
 * unpack.c recognises the format and then hands every byte of the stream,
 * from the first, to the decoder. The decoder pushes what it decodes into
 * `out` in pieces of at most UNPACK_CHUNK bytes, so memory stays bounded
 * whatever the compression ratio. Failures are recorded with fail(), naming
 * the format ("the gzip data is corrupt: ..."); a failure of `out` is
 * returned as is, its reason already recorded.
 */
#ifndef QCOW2C_UNPACK_PRIV_H
#define QCOW2C_UNPACK_PRIV_H

#include "stream.h"

#define UNPACK_CHUNK (256u * 1024u)

struct unpack_decoder;

struct unpack_ops {
    /* Decodes the next `len` bytes of compressed input. */
    int (*feed)(struct unpack_decoder *d, const unsigned char *in, size_t len,
                struct sink *out);
    /* End of input: fails unless the data ended where a stream ends. */
    int (*finish)(struct unpack_decoder *d, struct sink *out);
    void (*free)(struct unpack_decoder *d);
};

/* Each decoder type starts with this; unpack_decoder_init/_release manage
 * it. */
struct unpack_decoder {
    const struct unpack_ops *ops;
    unsigned char *buf; /* UNPACK_CHUNK bytes for decoded output */
};

struct unpack_decoder *unpack_gz_new(void);
struct unpack_decoder *unpack_bz2_new(void);
struct unpack_decoder *unpack_xz_new(void);

void unpack_decoder_init(struct unpack_decoder *d, const struct unpack_ops *ops);
void unpack_decoder_release(struct unpack_decoder *d);

/* Pushes the first `len` bytes of d->buf into `out` (nothing when 0). */
int unpack_emit(struct unpack_decoder *d, size_t len, struct sink *out);

/* What may follow the end of a complete gzip or bzip2 stream: another
 * stream, or zero bytes (tape and block-device padding) up to the end, as
 * gzip(1) accepts them. unpack_trailer() skips the zero bytes at `in` and
 * returns how many; 0 means a new stream starts there; -1 (reason
 * recorded) means data after padding. */
struct unpack_trailer {
    bool padding; /* zero bytes were skipped: only more of them may follow */
};
ptrdiff_t unpack_trailer(struct unpack_trailer *t, const char *format,
                         const unsigned char *in, size_t len);

/* The most input handed to a library at once: zlib and libbz2 count it in
 * an unsigned int. */
#define UNPACK_MAX_IN ((size_t)1 << 30)

#endif
