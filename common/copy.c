/* copy.c - reflink, extent-wise copy_file_range, read/write; see copy.h. */
#include "copy.h"

#include <linux/fs.h>
#include <pthread.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>

#include "cleanup.h"
#include "fsutil.h"
#include "log.h"

#define CHUNK (4u << 20)
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

/*
 * The portable path: a reader thread fills a few buffers ahead while this
 * thread writes them (holes for zero blocks when sparse), so that reading
 * the source and writing the copy overlap instead of taking turns. (Also
 * starting write-back per chunk with sync_file_range measured slower: it
 * blocks the writer when the device queue is full.)
 */
#define SLOTS 4

struct slot {
    unsigned char *buf;
    off_t off;
    size_t len;
};

struct reader {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct slot slot[SLOTS];
    unsigned filled, consumed; /* running counts; filled - consumed <= SLOTS */
    int in;
    off_t pos, end;
    int err;                   /* errno of a failed read; -1: the file shrank */
    bool done, stop;
};

static void *read_ahead(void *arg)
{
    struct reader *r = arg;

    while (r->pos < r->end) {
        struct slot *sl;
        size_t want = (size_t)(r->end - r->pos < CHUNK ? r->end - r->pos : CHUNK);
        ssize_t n;

        bool stop;

        pthread_mutex_lock(&r->mu);
        while (r->filled - r->consumed == SLOTS && !r->stop)
            pthread_cond_wait(&r->cv, &r->mu);
        sl = &r->slot[r->filled % SLOTS];
        stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
        do
            n = pread(r->in, sl->buf, want, r->pos);
        while (n < 0 && errno == EINTR);
        pthread_mutex_lock(&r->mu);
        if (n <= 0) {
            r->err = n < 0 ? errno : -1;
            pthread_mutex_unlock(&r->mu);
            break;
        }
        sl->off = r->pos;
        sl->len = (size_t)n;
        r->pos += n;
        r->filled++;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    pthread_mutex_lock(&r->mu);
    r->done = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Writes one buffer, as few write calls as possible: runs of data blocks go
 * out together, runs of zero blocks become holes when sparse. */
static int write_slot(int out, const char *dst, const struct slot *sl, bool sparse,
                      uint64_t *copied)
{
    size_t run = 0, off;

    if (!sparse) {
        *copied += sl->len;
        return write_at(out, sl->buf, sl->len, sl->off, dst);
    }
    for (off = 0; off < sl->len; off += ZERO_BLOCK) {
        size_t len = sl->len - off < ZERO_BLOCK ? sl->len - off : ZERO_BLOCK;

        if (!all_zero(sl->buf + off, len))
            continue;
        if (off > run && write_at(out, sl->buf + run, off - run, sl->off + (off_t)run, dst) < 0)
            return -1;
        *copied += off - run;
        run = off + len;
    }
    if (sl->len > run &&
        write_at(out, sl->buf + run, sl->len - run, sl->off + (off_t)run, dst) < 0)
        return -1;
    *copied += sl->len > run ? sl->len - run : 0;
    return 0;
}

static int copy_rw(int in, const char *src, int out, const char *dst, off_t start, off_t end,
                   bool sparse, uint64_t *copied)
{
    struct reader r = { .in = in, .pos = start, .end = end };
    pthread_t th;
    int rc = 0;

    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    for (int i = 0; i < SLOTS; i++)
        r.slot[i].buf = xmalloc(CHUNK);
    if (pthread_create(&th, NULL, read_ahead, &r) != 0)
        die("cannot start a thread");
    for (;;) {
        struct slot *sl;

        pthread_mutex_lock(&r.mu);
        while (r.consumed == r.filled && !r.done)
            pthread_cond_wait(&r.cv, &r.mu);
        if (r.consumed == r.filled) {
            pthread_mutex_unlock(&r.mu);
            break;
        }
        sl = &r.slot[r.consumed % SLOTS];
        pthread_mutex_unlock(&r.mu);
        rc = write_slot(out, dst, sl, sparse, copied);
        pthread_mutex_lock(&r.mu);
        r.consumed++;
        r.stop = rc < 0;
        pthread_cond_broadcast(&r.cv);
        pthread_mutex_unlock(&r.mu);
        if (rc < 0)
            break;
    }
    pthread_join(th, NULL);
    if (rc == 0 && r.err > 0) {
        errno = r.err;
        rc = fail_errno("cannot read '%s'", src);
    } else if (rc == 0 && r.err < 0) {
        rc = fail("'%s' shrank while it was being copied", src);
    }
    for (int i = 0; i < SLOTS; i++)
        free(r.slot[i].buf);
    pthread_mutex_destroy(&r.mu);
    pthread_cond_destroy(&r.cv);
    return rc;
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

/* copy_file_range pays where the file system copies without the data
 * crossing the client (NFS 4.2 and SMB server-side copy, Ceph). On local
 * file systems it falls back to page-by-page splicing, measured at twice the
 * time of plain reads and writes on ext4 (bench/ds-copy.sh). */
static bool kernel_copy_pays(int fd)
{
    struct statfs sf;

    if (fstatfs(fd, &sf) < 0)
        return false;
    switch ((unsigned long)sf.f_type) {
    case NFS_SUPER_MAGIC:
    case SMB2_SUPER_MAGIC:
    case CIFS_SUPER_MAGIC:
    case 0x00c36400: /* ceph */
        return true;
    default:
        return false;
    }
}

int copy_fd(int in, const char *src, int out, const char *dst, bool sparse,
            struct copy_result *res)
{
    struct stat st;
    bool kernel_ok = kernel_copy_pays(out);
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
    posix_fadvise(in, 0, 0, POSIX_FADV_SEQUENTIAL);
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
