/*
 * gz.h - zlib compression (gz.c; the gzip decoder is in unpack_priv.h).
 */
#ifndef QCOW2C_GZ_H
#define QCOW2C_GZ_H

#include <stddef.h>

#include "sbuf.h"

/* Appends the zlib stream (RFC 1950, best compression) of `in` to `out`:
 * what Ruby's Zlib::Deflate.deflate gives, as monitord expects. */
int zlib_compress(const void *in, size_t len, struct sbuf *out);

#endif
