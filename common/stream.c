/* stream.c - the sink plumbing, the terminal sinks and the fd source; see
 * stream.h. */
#include "stream.h"

#include "cleanup.h"
#include "log.h"

/* Every sink type starts with its struct sink, so the callbacks convert the
 * pointer they get back to their own type (C11 6.7.2.1p15). */

/* The unit of hole detection: the page and file system block size, so a
 * skipped block frees a whole block on disk. */
#define HOLE_BLOCK 4096u
/* Writes are gathered into runs of this size: sources and decoders often
 * deliver a few KiB at a time, and one syscall per 4 KiB costs more than the
 * copy. A multiple of HOLE_BLOCK. */
#define STAGE_SIZE (256u * 1024u)
#define PUMP_CHUNK (256u * 1024u)

int sink_write(struct sink *s, const void *buf, size_t len)
{
    if (!len)
        return 0;
    if (s->write(s, buf, len) < 0)
        return -1;
    s->bytes += len;
    return 0;
}

int sink_close(struct sink *s)
{
    return s->close(s);
}

void sink_free(struct sink *s)
{
    if (s)
        s->free(s);
}

/* ---- file sink ---- */

struct file_sink {
    struct sink s;
    int fd;
    char *name;
    bool sparse;
    bool pending_hole; /* the file position is past the last byte written */
    uint64_t pos;      /* bytes of the stream handled so far (written or skipped) */
    unsigned char *stage;
    size_t fill;
};

static int no_space(struct file_sink *f)
{
    return fail("no space left on the device for '%s' (after %llu bytes)", f->name,
                (unsigned long long)f->pos);
}

static int write_all(struct file_sink *f, const unsigned char *p, size_t n)
{
    if (n)
        f->pending_hole = false;
    while (n) {
        ssize_t w = write(f->fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == ENOSPC)
            return no_space(f);
        if (w < 0)
            return fail_errno("cannot write '%s'", f->name);
        if (w == 0) /* only for a device at its end: the same as a full disk */
            return no_space(f);
        p += w;
        n -= (size_t)w;
        f->pos += (uint64_t)w;
    }
    return 0;
}

static int skip_hole(struct file_sink *f, size_t n)
{
    if (lseek(f->fd, (off_t)n, SEEK_CUR) < 0)
        return fail_errno("cannot seek in '%s'", f->name);
    f->pos += n;
    f->pending_hole = true;
    return 0;
}

/* Comparing a block with itself shifted by one byte uses libc's vectorised
 * memcmp and needs no zero buffer. */
static bool block_is_zero(const unsigned char *p, size_t n)
{
    return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

/* Writes whole blocks starting at a block-aligned stream position: runs of
 * data blocks in one write(), runs of zero blocks as one seek. */
static int put_blocks(struct file_sink *f, const unsigned char *p, size_t n)
{
    size_t done = 0;

    if (!f->sparse)
        return write_all(f, p, n);
    while (done < n) {
        size_t run = 0;
        bool zero = block_is_zero(p + done, HOLE_BLOCK);

        do
            run += HOLE_BLOCK;
        while (done + run < n && block_is_zero(p + done + run, HOLE_BLOCK) == zero);
        if ((zero ? skip_hole(f, run) : write_all(f, p + done, run)) < 0)
            return -1;
        done += run;
    }
    return 0;
}

static int file_sink_write(struct sink *s, const void *buf, size_t len)
{
    struct file_sink *f = (struct file_sink *)s;
    const unsigned char *p = buf;

    /* A big aligned write goes straight through; anything else is staged
     * until a full stage keeps the next run aligned. */
    if (!f->fill && len >= STAGE_SIZE) {
        size_t whole = len - len % HOLE_BLOCK;

        if (put_blocks(f, p, whole) < 0)
            return -1;
        p += whole;
        len -= whole;
    }
    while (len) {
        size_t take = STAGE_SIZE - f->fill < len ? STAGE_SIZE - f->fill : len;

        memcpy(f->stage + f->fill, p, take);
        f->fill += take;
        p += take;
        len -= take;
        if (f->fill == STAGE_SIZE) {
            if (put_blocks(f, f->stage, f->fill) < 0)
                return -1;
            f->fill = 0;
        }
    }
    return 0;
}

static int file_sink_close(struct sink *s)
{
    struct file_sink *f = (struct file_sink *)s;
    size_t whole = f->fill - f->fill % HOLE_BLOCK;

    if (put_blocks(f, f->stage, whole) < 0 ||
        write_all(f, f->stage + whole, f->fill - whole) < 0)
        return -1;
    f->fill = 0;
    /* A trailing hole was only seeked over: the file ends at the last byte
     * written until the size is set. */
    if (f->pending_hole && ftruncate(f->fd, (off_t)f->pos) < 0)
        return fail_errno("cannot set the size of '%s'", f->name);
    return 0;
}

static void file_sink_free(struct sink *s)
{
    struct file_sink *f = (struct file_sink *)s;

    free(f->stage);
    free(f->name);
    free(f);
}

struct sink *file_sink_new(int fd, const char *name, bool sparse)
{
    struct file_sink *f = xcalloc(1, sizeof(*f));
    struct stat st;

    f->s.write = file_sink_write;
    f->s.close = file_sink_close;
    f->s.free = file_sink_free;
    f->fd = fd;
    f->name = xstrdup(name);
    /* Skipping a block of a device or a pipe would leave its old contents,
     * or fail: holes only exist in regular files. */
    f->sparse = sparse && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    f->stage = xmalloc(STAGE_SIZE);
    return &f->s;
}

/* ---- null sink ---- */

static int null_sink_write(struct sink *s UNUSED, const void *buf UNUSED, size_t len UNUSED)
{
    return 0;
}

static int null_sink_close(struct sink *s UNUSED)
{
    return 0;
}

static void null_sink_free(struct sink *s)
{
    free(s);
}

struct sink *null_sink_new(void)
{
    struct sink *s = xcalloc(1, sizeof(*s));

    s->write = null_sink_write;
    s->close = null_sink_close;
    s->free = null_sink_free;
    return s;
}

/* ---- head sink ---- */

struct head_sink {
    struct sink s;
    size_t max;
    size_t len;
    unsigned char *data;
};

static int head_sink_write(struct sink *s, const void *buf, size_t len)
{
    struct head_sink *h = (struct head_sink *)s;
    size_t room = h->max - h->len;

    if (len > room)
        len = room;
    memcpy(h->data + h->len, buf, len);
    h->len += len;
    return 0;
}

static void head_sink_free(struct sink *s)
{
    struct head_sink *h = (struct head_sink *)s;

    free(h->data);
    free(h);
}

struct sink *head_sink_new(size_t max)
{
    struct head_sink *h = xcalloc(1, sizeof(*h));

    h->s.write = head_sink_write;
    h->s.close = null_sink_close;
    h->s.free = head_sink_free;
    h->max = max;
    h->data = xmalloc(max ? max : 1);
    return &h->s;
}

const void *head_sink_data(struct sink *s, size_t *len)
{
    struct head_sink *h = (struct head_sink *)s;

    if (len)
        *len = h->len;
    return h->data;
}

/* ---- sources ---- */

int fd_pump(int fd, const char *name, struct sink *to)
{
    _cleanup_free_ unsigned char *buf = xmalloc(PUMP_CHUNK);

    for (;;) {
        ssize_t n = read(fd, buf, PUMP_CHUNK);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno("cannot read '%s'", name);
        if (n == 0)
            return 0;
        if (sink_write(to, buf, (size_t)n) < 0)
            return -1;
    }
}

bool is_http_url(const char *s)
{
    static const char *const schemes[] = { "http://", "https://" };

    if (!s)
        return false;
    for (size_t i = 0; i < ARRAY_SIZE(schemes); i++) {
        size_t n = strlen(schemes[i]);

        if (!strncasecmp(s, schemes[i], n) && s[n] && s[n] != '/')
            return true;
    }
    return false;
}
