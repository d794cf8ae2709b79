/*
 * stat REQUEST_ID  (stdin: DS_DRIVER_ACTION_DATA; IMAGE holds only PATH)
 *
 * Tells oned how many MB the image at IMAGE/PATH needs, before it allocates
 * the image (protocol §5.3): one line, an integer, rounded up. oned waits at
 * most 90 s for this answer.
 *
 * For a disk format with a header (qcow2, vmdk, ...) the answer is its
 * virtual size, read from the first bytes only, after decompression when the
 * file is gzip/bzip2/xz. A raw image's size is its length; compressed raw
 * files are decompressed and counted; for a URL the length comes from the
 * HTTP headers (a compressed raw URL cannot be sized without downloading it
 * and is refused, as by OpenNebula's fs driver). A directory counts the bytes
 * of its files.
 */
#include "ds_actions.h"

#include <ftw.h>

#include "cleanup.h"
#include "dsutil.h"
#include "fsutil.h"
#include "image.h"
#include "log.h"
#include "qemu_img.h"
#include "stream.h"

/* Compressed bytes read to find the header of a compressed image. */
#define HEAD_INPUT (4u << 20)

struct head {
    struct sink *chain; /* unpack -> head */
    struct sink *keep;  /* the head sink inside the chain */
    const char *compression;
};

static uint64_t dir_bytes;

static int add_size(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)p, (void)f;
    if (flag == FTW_F)
        dir_bytes += (uint64_t)st->st_size;
    return 0;
}

static int size_of_dir(const char *path, uint64_t *bytes)
{
    dir_bytes = 0;
    if (nftw(path, add_size, 32, FTW_PHYS) < 0)
        return fail_errno("cannot read directory '%s'", path);
    *bytes = dir_bytes;
    return 0;
}

/* The decompressed first bytes of a file or URL. */
static int read_head(const char *path, bool url, bool decompress, struct head *h)
{
    _cleanup_close_ int fd = -1;
    _cleanup_free_ unsigned char *buf = NULL;
    size_t got = 0;

    h->keep = head_sink_new(IMAGE_PROBE_BYTES);
    h->chain = unpack_sink_new(h->keep, decompress);
    if (url) {
        if (http_fetch(path, h->chain, HEAD_INPUT) < 0)
            return -1;
    } else {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return fail_errno("cannot read '%s'", path);
        buf = xmalloc(HEAD_INPUT);
        while (got < HEAD_INPUT) {
            ssize_t n = read(fd, buf + got, HEAD_INPUT - got);

            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return fail_errno("cannot read '%s'", path);
            if (n == 0)
                break;
            got += (size_t)n;
        }
        if (got < HEAD_INPUT) {
            /* The whole file is in: decode it to the end, so a short file
             * and a corrupt one are told apart. */
            if (sink_write(h->chain, buf, got) < 0 || sink_close(h->chain) < 0)
                return -1;
        } else if (sink_write(h->chain, buf, got) < 0) {
            /* Only the head matters: a compressed stream cut here may fail
             * to decode further on, which is no error as long as the head
             * came out. */
            size_t have = 0;

            head_sink_data(h->keep, &have);
            if (!have)
                return -1;
            fail_reset();
        }
    }
    h->compression = unpack_sink_format(h->chain);
    return 0;
}

/* Virtual size of a format only qemu-img understands, from its head. */
static int qemu_size(const char *path, const char *fmt, const void *head, size_t len,
                     uint64_t *bytes)
{
    _cleanup_free_ char *tmp = NULL;
    _cleanup_free_ char *got_fmt = NULL;
    struct cmd c = CMD_INIT;
    int rc;

    if (path) {
        qi_info(&c, path, 0);
    } else {
        const char *base = getenv("TMPDIR");
        int fd;

        tmp = xasprintf("%s/qcow2c-stat-XXXXXX", base && *base ? base : "/tmp");
        fd = mkstemp(tmp);
        if (fd < 0)
            return fail_errno("cannot create a temporary file");
        if (write(fd, head, len) != (ssize_t)len) {
            close(fd);
            unlink(tmp);
            return fail_errno("cannot write a temporary file");
        }
        close(fd);
        qi_info(&c, tmp, 0);
    }
    (void)fmt;
    rc = cmd_run(&c);
    if (rc == 0)
        rc = qi_parse_info(c.out.buf, &got_fmt, bytes);
    cmd_release(&c);
    if (tmp)
        unlink(tmp);
    return rc;
}

static int count_decompressed(const char *path, uint64_t *bytes)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct sink *count = null_sink_new();
    struct sink *chain = unpack_sink_new(count, true);
    int rc;

    if (fd < 0) {
        sink_free(chain);
        return fail_errno("cannot read '%s'", path);
    }
    rc = fd_pump(fd, path, chain);
    if (rc == 0)
        rc = sink_close(chain);
    *bytes = count->bytes;
    sink_free(chain);
    return rc;
}

/* IMAGE/PATH as messages show it: a URL without its "user:password@"
 * (oned writes log lines to oned.log and reasons into the image; http.c
 * hides credentials in its own reasons the same way). */
static char *shown_path(const char *path)
{
    const char *host = strstr(path, "://");
    const char *end, *at;

    if (!host)
        return xstrdup(path);
    host += 3;
    end = host + strcspn(host, "/?#");
    at = memrchr(host, '@', (size_t)(end - host));
    if (!at)
        return xstrdup(path);
    return xasprintf("%.*s%s", (int)(host - path), path, at + 1);
}

static int size_of(const char *path, bool url, bool decompress, uint64_t *bytes)
{
    struct head h = { 0 };
    struct image_info ii;
    const void *data;
    size_t len;
    struct stat st;
    int rc = -1;

    if (!url) {
        if (stat(path, &st) < 0)
            return fail_errno("cannot access '%s'", path);
        if (S_ISDIR(st.st_mode))
            return size_of_dir(path, bytes);
    }
    if (read_head(path, url, decompress, &h) < 0)
        goto out;
    data = head_sink_data(h.keep, &len);
    if (image_probe_buf(data, len, 0, &ii) < 0)
        goto out;
    if (!streq(ii.format, "raw")) {
        if (ii.size_known) {
            *bytes = ii.virtual_size;
            rc = 0;
        } else {
            rc = qemu_size(!url && streq(h.compression, "none") ? path : NULL, ii.format,
                           data, len, bytes);
        }
    } else if (streq(h.compression, "none")) {
        rc = url ? http_content_length(path, bytes) : (*bytes = (uint64_t)st.st_size, 0);
    } else if (url) {
        _cleanup_free_ char *shown = shown_path(path);

        rc = fail("cannot tell the size of the %s-compressed raw image %s without downloading "
                  "it; give the image SIZE or an uncompressed URL",
                  h.compression, shown);
    } else {
        rc = count_decompressed(path, bytes);
    }
    image_info_release(&ii);
out:
    if (h.chain)
        sink_free(h.chain);
    return rc;
}

int ds_stat(struct action_ctx *ctx)
{
    _cleanup_free_ char *path = img_attr(ctx->ds, "PATH");
    _cleanup_free_ char *nodec = ds_tmpl(ctx->ds, "NO_DECOMPRESS");
    _cleanup_free_ char *shown = NULL;
    bool url;
    uint64_t bytes = 0;

    if (str_empty(path))
        return fail("the image has no PATH");
    url = is_http_url(path);
    if (!url && path[0] != '/')
        return fail("the image PATH '%s' is not an absolute path or an http(s) URL", path);
    if (!url && ds_check_restricted(ctx->ds, path) < 0)
        return -1;
    shown = shown_path(path);
    if (size_of(path, url, !is_yes(nodec), &bytes) < 0)
        return fail_context("cannot determine the size of %s", shown);
    if (bytes == 0)
        return fail("cannot determine the size of %s: it is empty", shown);
    printf("%llu\n", (unsigned long long)((bytes + (1u << 20) - 1) >> 20));
    return 0;
}
