/* copy.c - reflink, extent-wise copy_file_range, read/write; see copy.h. */
#include "copy.h"

#include <linux/fs.h>
#include <sys/ioctl.h>

#include "cleanup.h"
#include "fsutil.h"
#include "log.h"

#define CHUNK (1u << 20)
#define ZERO_BLOCK 4096u

static bool all_zero(const unsigned char *p, size_t n)
{
    static const unsigned char zeros[ZERO_BLOCK];

    while (n >= ZERO_BLOCK) {
        if (memcmp(p, zeros, ZERO_BLOCK))
            return false;
        p += ZERO_BLOCK;
        n -= ZERO_BLOCK;
    }
    return n == 0 || memcmp(p, zeros, n) == 0;
}

static int write_at(int fd, const unsigned char *p, size_t n, off_t off, const char *name)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return fail_errno("cannot write '%s'", name);
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

/* The portable path: copies [start, end) through a buffer, leaving holes
 * for zero blocks when sparse. */
static int copy_rw(int in, const char *src, int out, const char *dst, off_t start, off_t end,
                   bool sparse, uint64_t *copied)
{
    _cleanup_free_ unsigned char *buf = xmalloc(CHUNK);

    while (start < end) {
        size_t want = (size_t)(end - start < CHUNK ? end - start : CHUNK);
        ssize_t n = pread(in, buf, want, start);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno("cannot read '%s'", src);
        if (n == 0)
            return fail("'%s' shrank while it was being copied", src);
        for (size_t off = 0; off < (size_t)n; off += ZERO_BLOCK) {
            size_t len = (size_t)n - off < ZERO_BLOCK ? (size_t)n - off : ZERO_BLOCK;

            if (sparse && all_zero(buf + off, len))
                continue;
            if (write_at(out, buf + off, len, start + (off_t)off, dst) < 0)
                return -1;
            *copied += len;
        }
        start += n;
    }
    return 0;
}

/* Copies [start, end) in the kernel. Returns 1 when the kernel cannot do it
 * for this pair of files (then the caller falls back). */
static int copy_range(int in, const char *src, int out, const char *dst, off_t start, off_t end,
                      uint64_t *copied)
{
    off_t ioff = start, ooff = start;

    while (ioff < end) {
        size_t want = (size_t)(end - ioff > (1 << 30) ? (1 << 30) : end - ioff);
        ssize_t n = copy_file_range(in, &ioff, out, &ooff, want, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && ioff == start &&
            (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP ||
             errno == EBADF))
            return 1;
        if (n < 0)
            return fail_errno("cannot copy '%s' to '%s'", src, dst);
        if (n == 0)
            return fail("'%s' shrank while it was being copied", src);
        *copied += (uint64_t)n;
    }
    return 0;
}

static int copy_extent(int in, const char *src, int out, const char *dst, off_t start, off_t end,
                       bool sparse, bool *kernel_ok, uint64_t *copied)
{
    if (*kernel_ok) {
        int rc = copy_range(in, src, out, dst, start, end, copied);

        if (rc <= 0)
            return rc;
        *kernel_ok = false;
    }
    return copy_rw(in, src, out, dst, start, end, sparse, copied);
}

int copy_fd(int in, const char *src, int out, const char *dst, bool sparse,
            struct copy_result *res)
{
    struct stat st;
    bool kernel_ok = true;
    off_t pos = 0, size;

    memset(res, 0, sizeof(*res));
    if (fstat(in, &st) < 0)
        return fail_errno("cannot read '%s'", src);
    size = st.st_size;
    res->size = (uint64_t)size;
    if (sparse && ioctl(out, FICLONE, in) == 0) {
        res->method = "reflink";
        return 0;
    }
    if (!sparse && size > 0 && fallocate(out, 0, 0, size) < 0 && errno != EOPNOTSUPP)
        return fail_errno("cannot allocate %lld bytes for '%s'", (long long)size, dst);

    while (pos < size) {
        off_t data = pos, hole = size;

        if (sparse) {
            data = lseek(in, pos, SEEK_DATA);
            if (data < 0 && errno == ENXIO)
                break; /* only a hole remains */
            if (data < 0) {
                data = pos; /* no SEEK_DATA here: treat the rest as data */
            } else {
                hole = lseek(in, data, SEEK_HOLE);
                if (hole < 0)
                    hole = size;
            }
        }
        if (copy_extent(in, src, out, dst, data, hole, sparse, &kernel_ok, &res->data_bytes) < 0)
            return -1;
        pos = hole;
    }
    if (ftruncate(out, size) < 0)
        return fail_errno("cannot set the size of '%s'", dst);
    res->method = kernel_ok ? "copy_file_range" : "read/write";
    return 0;
}

int copy_file(const char *src, const char *dst, bool sparse, struct copy_result *res)
{
    _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
    _cleanup_close_ int out = -1;

    if (in < 0)
        return fail_errno("cannot open '%s'", src);
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0)
        return fail_errno("cannot create '%s'", dst);
    if (copy_fd(in, src, out, dst, sparse, res) < 0 || fsync_fd(out, dst) < 0) {
        unlink(dst);
        return -1;
    }
    return 0;
}
