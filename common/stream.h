/*
 * stream.h - data flowing from a source (file, URL) through filters (digest,
 * decompression) into a file, in one pass.
 *
 * Everything is push-based: a source calls sink->write() with each chunk, in
 * order, then sink->close() once at the end of the data. A filter sink does
 * its work and pushes the result into the next sink. On error a write/close
 * returns -1 with the reason recorded (log.h) and the caller stops; free()
 * is always called, exactly once, and frees the whole chain behind it.
 *
 *     struct sink *file = file_sink_new(fd, name, true);
 *     struct sink *unz  = unpack_sink_new(file, true);
 *     struct sink *md5  = digest_sink_new(unz, DIGEST_MD5);
 *     if (http_fetch(url, md5) < 0 || sink_close(md5) < 0) ...
 *     printf("%s", digest_sink_hex(md5));
 *     sink_free(md5);
 */
#ifndef QCOW2C_STREAM_H
#define QCOW2C_STREAM_H

#include "util.h"

struct sink {
    int (*write)(struct sink *s, const void *buf, size_t len);
    int (*close)(struct sink *s);
    void (*free)(struct sink *s);
    uint64_t bytes; /* bytes accepted by write() so far (maintained by sink_write) */
};

int sink_write(struct sink *s, const void *buf, size_t len);
int sink_close(struct sink *s);
void sink_free(struct sink *s);

/* ---- terminal sinks (stream.c) ---- */

/* Writes sequentially to `fd` (opened by the caller, positioned at 0).
 * With `sparse`, aligned 4 KiB blocks of zeros become holes (lseek) instead
 * of writes, and close() sets the final size with ftruncate so a trailing
 * hole is kept. close() does not fsync and does not close `fd`. `name` is
 * used in messages. Holes are only made in a regular file, which must be
 * empty (a skipped block keeps what was there); a device or pipe gets every
 * byte. A full disk fails with "no space left on the device for '<name>'". */
struct sink *file_sink_new(int fd, const char *name, bool sparse);

/* Counts and discards (stat of compressed images). */
struct sink *null_sink_new(void);

/* Keeps the first `max` bytes in memory and discards the rest (to probe an
 * image header). */
struct sink *head_sink_new(size_t max);
const void *head_sink_data(struct sink *s, size_t *len);

/* ---- sources (stream.c, http.c) ---- */

/* Reads `fd` to EOF into `to` (does not close `to`). */
int fd_pump(int fd, const char *name, struct sink *to);

/* Downloads an http:// or https:// URL into `to` (does not close `to`).
 * Follows redirects; fails on HTTP status >= 400 with the status in the
 * reason; connect timeout HTTP_CONNECT_TIMEOUT, whole transfer COPY_TIMEOUT
 * (qcow2c.conf). `max_bytes` > 0 stops after that many bytes (success).
 * Also aborts a transfer below 1 KiB/s for 60 s. The bytes are those the
 * server sends: no Content-Encoding decoding. Reasons name the URL without
 * its user:password. */
int http_fetch(const char *url, struct sink *to, uint64_t max_bytes);
/* HEAD request: Content-Length after redirects. -1 (reason recorded) when
 * the server gives none. A HEAD refused with 403/405/501 (URLs signed for
 * GET only) is retried as a GET that stops after the headers. Limited to
 * the shorter of TIMEOUT and COPY_TIMEOUT. */
int http_content_length(const char *url, uint64_t *len);
bool is_http_url(const char *s);

/* ---- filters ---- */

enum digest_algo { DIGEST_MD5, DIGEST_SHA1, DIGEST_SHA256 };
/* Passes data through unchanged to `next` and hashes it (crypto.c, OpenSSL). */
struct sink *digest_sink_new(struct sink *next, enum digest_algo algo);
/* Lower-case hex digest; valid after close() ("" before). */
const char *digest_sink_hex(struct sink *s);
/* md5/sha1 of a string, hex (for generated image names). */
char *digest_hex(enum digest_algo algo, const void *data, size_t len);

/* Decompresses gzip, bzip2 or xz, detected from the first bytes (magic),
 * into `next`; data in any other format passes through unchanged. With
 * `detect` false everything passes through (NO_DECOMPRESS). Multi-member
 * gzip and multi-stream xz/bzip2 are handled, and zero bytes after the
 * last stream are ignored as gzip(1) does (xz: in multiples of 4 bytes,
 * its stream padding); other data after it fails. Truncated or corrupt
 * compressed data fails with a reason naming the format (unpack.c with
 * gz.c/unpack_bz2.c/unpack_xz.c, one per library). */
struct sink *unpack_sink_new(struct sink *next, bool detect);
/* "gzip", "bzip2", "xz" or "none"; known after the first write. Exception:
 * input that so far is only the beginning of a signature (under 10 bytes,
 * e.g. "BZh") is held back, with "none" reported, until more data or
 * close() decides. */
const char *unpack_sink_format(struct sink *s);

#endif
