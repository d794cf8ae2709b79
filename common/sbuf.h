/*
 * sbuf.h - growable, always NUL-terminated byte buffers.
 *
 * Invariants (as in git's strbuf): `buf` is never NULL, `buf[len]` is always
 * '\0', and a buffer initialised with SBUF_INIT needs no allocation until the
 * first append. The data may contain NUL bytes; `len` is authoritative.
 */
#ifndef QCOW2C_SBUF_H
#define QCOW2C_SBUF_H

#include "util.h"

struct sbuf {
    char *buf;
    size_t len;
    size_t alloc;
};

extern char sbuf_slop[1];
#define SBUF_INIT { .buf = sbuf_slop, .len = 0, .alloc = 0 }

void sbuf_init(struct sbuf *sb);
/* Frees the storage and leaves `sb` as after SBUF_INIT. */
void sbuf_release(struct sbuf *sb);
/* Hands the string to the caller (who frees it) and resets `sb`. */
char *sbuf_detach(struct sbuf *sb);

/* Makes room for `extra` more bytes. */
void sbuf_grow(struct sbuf *sb, size_t extra);
void sbuf_setlen(struct sbuf *sb, size_t len);
static inline void sbuf_reset(struct sbuf *sb)
{
    sbuf_setlen(sb, 0);
}

void sbuf_add(struct sbuf *sb, const void *data, size_t len);
void sbuf_adds(struct sbuf *sb, const char *s);
void sbuf_addch(struct sbuf *sb, int c);
void sbuf_addf(struct sbuf *sb, const char *fmt, ...) PRINTF_LIKE(2, 3);
void sbuf_vaddf(struct sbuf *sb, const char *fmt, va_list ap) PRINTF_LIKE(2, 0);

/* Removes trailing whitespace (space, tab, CR, LF). */
void sbuf_rtrim(struct sbuf *sb);
/* Removes bytes from the front. */
void sbuf_remove_head(struct sbuf *sb, size_t n);

/* Appends `s` with every control character replaced by a space: for text
 * that must stay on one line of oned's driver protocol. */
void sbuf_add_oneline(struct sbuf *sb, const char *s, size_t len);

/* Reads `fd` to EOF, up to `max` bytes in total (0 = unlimited). Returns 0,
 * or -1 with errno set (E2BIG when the limit was reached). */
int sbuf_read_fd(struct sbuf *sb, int fd, size_t max);
/* Reads a whole file; -1 and errno on failure. */
int sbuf_read_file(struct sbuf *sb, const char *path, size_t max);

#endif
