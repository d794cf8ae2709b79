/* sbuf.c - growable byte buffers; see sbuf.h for the invariants. */
#include "sbuf.h"

#include "cleanup.h"
#include "log.h"

char sbuf_slop[1];

void sbuf_init(struct sbuf *sb)
{
    sb->buf = sbuf_slop;
    sb->len = 0;
    sb->alloc = 0;
}

void sbuf_release(struct sbuf *sb)
{
    if (sb->alloc)
        free(sb->buf);
    sbuf_init(sb);
}

char *sbuf_detach(struct sbuf *sb)
{
    char *s = sb->alloc ? sb->buf : xstrdup("");

    sbuf_init(sb);
    return s;
}

void sbuf_grow(struct sbuf *sb, size_t extra)
{
    size_t need;

    if (extra > SIZE_MAX - sb->len - 1)
        die("out of memory");
    need = sb->len + extra + 1;
    if (need <= sb->alloc)
        return;
    if (!sb->alloc)
        sb->buf = NULL;
    ALLOC_GROW(sb->buf, need, sb->alloc);
    if (sb->len == 0)
        sb->buf[0] = '\0';
}

void sbuf_setlen(struct sbuf *sb, size_t len)
{
    if (!sb->alloc) {
        if (len)
            die("sbuf_setlen beyond an empty buffer");
        return;
    }
    if (len >= sb->alloc)
        die("sbuf_setlen beyond the allocation");
    sb->len = len;
    sb->buf[len] = '\0';
}

void sbuf_add(struct sbuf *sb, const void *data, size_t len)
{
    if (!len)
        return;
    sbuf_grow(sb, len);
    memcpy(sb->buf + sb->len, data, len);
    sb->len += len;
    sb->buf[sb->len] = '\0';
}

void sbuf_adds(struct sbuf *sb, const char *s)
{
    sbuf_add(sb, s, strlen(s));
}

void sbuf_addch(struct sbuf *sb, int c)
{
    char ch = (char)c;

    sbuf_add(sb, &ch, 1);
}

void sbuf_vaddf(struct sbuf *sb, const char *fmt, va_list ap)
{
    va_list cp;
    int n;

    va_copy(cp, ap);
    n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        die("invalid format string");
    sbuf_grow(sb, (size_t)n);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void sbuf_addf(struct sbuf *sb, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sbuf_vaddf(sb, fmt, ap);
    va_end(ap);
}

void sbuf_rtrim(struct sbuf *sb)
{
    while (sb->len && sb->buf[sb->len - 1] && strchr(" \t\r\n", sb->buf[sb->len - 1]))
        sb->len--;
    if (sb->alloc)
        sb->buf[sb->len] = '\0';
}

void sbuf_remove_head(struct sbuf *sb, size_t n)
{
    if (n >= sb->len) {
        sbuf_reset(sb);
        return;
    }
    memmove(sb->buf, sb->buf + n, sb->len - n);
    sbuf_setlen(sb, sb->len - n);
}

void sbuf_add_oneline(struct sbuf *sb, const char *s, size_t len)
{
    size_t i;

    sbuf_grow(sb, len);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        sb->buf[sb->len++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    sb->buf[sb->len] = '\0';
}

int sbuf_read_fd(struct sbuf *sb, int fd, size_t max)
{
    for (;;) {
        size_t want;
        ssize_t n;

        /* Never read more than one byte past the limit: that byte tells a
         * too large input from one of exactly `max` bytes. */
        if (max && sb->len > max) {
            errno = E2BIG;
            return -1;
        }
        sbuf_grow(sb, 65536);
        want = sb->alloc - sb->len - 1;
        if (max && max - sb->len < want)
            want = max - sb->len + 1;
        n = read(fd, sb->buf + sb->len, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        sb->len += (size_t)n;
        sb->buf[sb->len] = '\0';
        if (max && sb->len > max) {
            sbuf_setlen(sb, max);
            errno = E2BIG;
            return -1;
        }
    }
    return 0;
}

int sbuf_read_file(struct sbuf *sb, const char *path, size_t max)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    return sbuf_read_fd(sb, fd, max);
}
