/*
 * cp IMAGE_ID  (stdin: DS_DRIVER_ACTION_DATA with IMAGE and DATASTORE)
 *
 * Registers an image from IMAGE/PATH, a local file or an http(s) URL, into
 * a new file BASE_PATH/<hash> of the datastore. oned reads one line of
 * stdout: "<SOURCE> <FORMAT>" (protocol §5.3).
 *
 * In one pass the data is hashed (IMAGE/TEMPLATE/MD5 or SHA1, of the bytes as
 * fetched, like OpenNebula's downloader), decompressed (gzip, bzip2, xz,
 * unless the datastore says NO_DECOMPRESS) and written sparsely. An
 * uncompressed local file without a checksum takes the fast path instead:
 * reflink or in-kernel copy of its data extents. Then the format is detected,
 * the image converted to the datastore's DRIVER when CONVERT allows, checked,
 * and only then renamed to its final name. A failure at any point leaves
 * nothing under the final name and removes the partial file; running cp again
 * starts clean. Local paths under RESTRICTED_DIRS (and /var/lib/one/,
 * /etc/one/, $HOME/) are refused unless listed in SAFE_DIRS.
 */
#include "ds_actions.h"

#include <strings.h>

#include "cleanup.h"
#include "copy.h"
#include "dsutil.h"
#include "fsutil.h"
#include "hostpath.h"
#include "image.h"
#include "lock.h"
#include "log.h"
#include "qemu_img.h"
#include "stream.h"
#include "config.h"

struct cp_job {
    const char *path;     /* IMAGE/PATH */
    const char *shown;    /* the same for messages (no credentials) */
    bool url;
    bool decompress;
    bool convert;
    bool sparse;
    const char *driver;   /* target format, "" = keep */
    enum digest_algo algo;
    char *expect;         /* expected hex digest, or NULL */
    const char *algo_name;
};

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

static bool file_is_compressed(int fd)
{
    unsigned char m[6];

    if (pread(fd, m, sizeof(m), 0) != (ssize_t)sizeof(m))
        return false;
    return (m[0] == 0x1f && m[1] == 0x8b) || !memcmp(m, "BZh", 3) ||
           !memcmp(m, "\xfd" "7zXZ\0", 6);
}

/* Streams the source through digest and decompression into `tmp`. */
static int fetch_stream(struct cp_job *job, int src_fd, const char *tmp, char **digest)
{
    _cleanup_close_ int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    struct sink *head;
    int rc;

    if (out < 0)
        return fail_errno("cannot create '%s'", tmp);
    head = unpack_sink_new(file_sink_new(out, tmp, job->sparse), job->decompress);
    if (job->expect)
        head = digest_sink_new(head, job->algo);
    rc = job->url ? http_fetch(job->path, head, 0) : fd_pump(src_fd, job->path, head);
    if (rc == 0)
        rc = sink_close(head);
    if (rc == 0 && job->expect)
        *digest = xstrdup(digest_sink_hex(head));
    sink_free(head);
    return rc;
}

static int fetch(struct cp_job *job, const char *tmp, const char *base)
{
    _cleanup_close_ int fd = -1;
    _cleanup_free_ char *digest = NULL;
    struct copy_result res;
    struct stat st;

    if (job->url) {
        log_info("downloading image %s to the image repository", job->shown);
    } else {
        fd = open(job->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
            return fail_errno("cannot read '%s'", job->path);
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
            return fail("'%s' is not a regular file", job->path);
        if (S_ISREG(st.st_mode)) {
            uint64_t avail;

            if (fs_free_bytes(base, &avail) < 0)
                return -1;
            if ((uint64_t)st.st_blocks * 512 > avail)
                return fail("not enough space in the datastore for '%s': %llu MB needed, "
                            "%llu MB free",
                            job->path, (unsigned long long)(st.st_blocks / 2048 + 1),
                            (unsigned long long)(avail >> 20));
        }
        log_info("copying local image %s to the image repository", job->path);
        if (S_ISREG(st.st_mode) && !job->expect &&
            !(job->decompress && file_is_compressed(fd))) {
            if (copy_file(job->path, tmp, job->sparse, &res) < 0)
                return -1;
            log_debug("copied %llu bytes by %s", (unsigned long long)res.data_bytes,
                      res.method);
            return 0;
        }
    }
    if (fetch_stream(job, fd, tmp, &digest) < 0)
        return -1;
    if (job->expect && strcasecmp(digest, job->expect) != 0)
        return fail("%s mismatch for %s: expected %s, got %s", job->algo_name, job->shown,
                    job->expect, digest);
    return 0;
}

/* An image that names other files would read them once registered (through
 * the conversion below, or a VM later): another image of this datastore,
 * which a relative backing name resolves to, or any file of the front-end or
 * the hosts. Such an image is refused; its standalone copy (qemu-img
 * convert) can be registered instead. */
static int refuse_references(const struct cp_job *job, const char *tmp)
{
    static const char descriptor[] = "# Disk DescriptorFile";
    char head[sizeof(descriptor) - 1];
    struct image_info ii;
    struct cmd c = CMD_INIT;
    const char *format;
    int fd, rc = 0;

    if (image_probe_path(tmp, &ii) < 0)
        return -1;
    format = ii.format; /* static strings */
    if (streq(format, "raw") || streq(format, "luks")) {
        image_info_release(&ii);
        return 0;
    }
    if (ii.backing_file)
        rc = fail("refusing %s: it has a backing file ('%s'); register a standalone image "
                  "(qemu-img convert makes one)",
                  job->shown, ii.backing_file);
    else if (ii.external_data)
        rc = fail("refusing %s: its data is in an external data file; register a standalone "
                  "image (qemu-img convert makes one)",
                  job->shown);
    image_info_release(&ii);
    if (rc < 0 || streq(format, "qcow2"))
        return rc;
    fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail_errno("cannot read '%s'", tmp);
    if (pread(fd, head, sizeof(head), 0) == (ssize_t)sizeof(head) &&
        !memcmp(head, descriptor, sizeof(head)))
        rc = fail("refusing %s: it is a VMDK descriptor that refers to other files; register "
                  "a standalone image (qemu-img convert makes one)",
                  job->shown);
    close(fd);
    if (rc < 0)
        return rc;
    /* The formats only qemu-img reads (vmdk, qed, vhdx, ...). */
    qi_info(&c, tmp, 0);
    rc = cmd_run(&c);
    if (rc == 0 && (starts_with(c.out.buf, "backing file:") ||
                    strstr(c.out.buf, "\nbacking file:")))
        rc = fail("refusing %s: it has a backing file; register a standalone image "
                  "(qemu-img convert makes one)",
                  job->shown);
    cmd_release(&c);
    return rc;
}

/* Converts `*tmp` in place (through a second temporary) when the datastore
 * wants another format; updates *format. */
static int convert_if_needed(struct cp_job *job, const char *final, char **tmp, char **format)
{
    _cleanup_free_ char *conv = NULL;
    struct cmd c = CMD_INIT;
    int rc;

    if (!job->convert || (!streq(job->driver, "raw") && !streq(job->driver, "qcow2")) ||
        streq(*format, job->driver) || streq(*format, "luks"))
        return 0;
    conv = xasprintf("%s.conv", *tmp);
    if (unlink_if_exists(conv) < 0)
        return -1;
    log_info("converting %s from %s to %s", final, *format, job->driver);
    qi_convert(&c, *tmp, *format, conv, job->driver, job->sparse ? 0 : QI_PREALLOC);
    rc = cmd_run(&c);
    cmd_release(&c);
    unlink(*tmp);
    if (rc < 0) {
        unlink(conv);
        return -1;
    }
    free(*tmp);
    *tmp = TAKE_PTR(conv);
    free(*format);
    *format = xstrdup(job->driver);
    return 0;
}

static int plan(const struct action_ctx *ctx, const struct ds *ds, struct cp_job *job,
                char **strings)
{
    /* strings[] owns every attribute read here */
    char *path = strings[0] = img_attr(ctx->ds, "PATH");
    char *md5 = strings[1] = xml_get(ctx->ds, "/DS_DRIVER_ACTION_DATA/IMAGE/TEMPLATE/MD5");
    char *sha1 = strings[2] = xml_get(ctx->ds, "/DS_DRIVER_ACTION_DATA/IMAGE/TEMPLATE/SHA1");
    char *nodec = strings[3] = ds_tmpl(ctx->ds, "NO_DECOMPRESS");
    char *convert = strings[4] = ds_tmpl(ctx->ds, "CONVERT");
    char *itype = strings[5] = img_attr(ctx->ds, "TYPE");
    char *bw = strings[6] = ds_tmpl(ctx->ds, "LIMIT_TRANSFER_BW");
    char *shown = strings[7] = path ? shown_path(path) : NULL;
    bool file_ds = ds->type == 2;

    memset(job, 0, sizeof(*job));
    if (str_empty(path))
        return fail("the image has no PATH to copy from");
    job->path = path;
    job->shown = shown;
    job->url = is_http_url(path);
    if (!job->url && strstr(path, "://"))
        return fail("unsupported image source '%s': qcow2c copies local files and "
                    "http(s) URLs",
                    shown);
    if (!job->url && path[0] != '/')
        return fail("the image PATH '%s' is not an absolute path", path);
    /* FILE datastores keep files as given unless told otherwise (fs/cp). */
    job->decompress = nodec ? !is_yes(nodec) : !file_ds;
    job->convert = !is_no(convert) && !streq(itype, "1") && !file_ds;
    job->sparse = ds->sparse;
    job->driver = ds->driver;
    if (!str_empty(md5)) {
        job->algo = DIGEST_MD5, job->expect = md5, job->algo_name = "MD5";
    } else if (!str_empty(sha1)) {
        job->algo = DIGEST_SHA1, job->expect = sha1, job->algo_name = "SHA1";
    }
    if (!str_empty(bw))
        log_warn("LIMIT_TRANSFER_BW is not applied by qcow2c");
    if (!job->url && ds_check_restricted(ctx->ds, path) < 0)
        return -1;
    return 0;
}

int ds_cp(struct action_ctx *ctx)
{
    struct ds ds;
    struct cp_job job;
    struct lock lk = LOCK_INIT;
    char *strings[8] = { 0 };
    _cleanup_free_ char *source = NULL;
    _cleanup_free_ char *final = NULL;
    _cleanup_free_ char *tmp = NULL;
    _cleanup_free_ char *format = NULL;
    uint64_t vsize = 0;
    int rc = -1;

    if (ds_load(ctx->ds, &ds) < 0)
        return -1;
    if (plan(ctx, &ds, &job, strings) < 0)
        goto out;
    source = ds_new_source(&ds, ctx->id);
    final = path_normalize(source);
    tmp = part_name(final);
    if (mkdir_p(ds.base_norm, 0755) < 0 ||
        lock_take_path(&lk, final, config_uint("LOCK_TIMEOUT")) < 0 ||
        unlink_if_exists(tmp) < 0)
        goto out;
    if (fetch(&job, tmp, ds.base_norm) < 0)
        goto cleanup;
    if (refuse_references(&job, tmp) < 0 || ds_detect_format(tmp, &format, &vsize) < 0 ||
        convert_if_needed(&job, final, &tmp, &format) < 0)
        goto cleanup;
    if (streq(format, "luks")) { /* oned knows LUKS volumes as raw disks */
        free(format);
        format = xstrdup("raw");
    }
    if (ds_verify_and_publish(tmp, final, format) < 0)
        goto cleanup;
    printf("%s %s\n", source, format);
    rc = 0;
    goto out;
cleanup:
    unlink(tmp);
out:
    lock_release(&lk);
    for (size_t i = 0; i < ARRAY_SIZE(strings); i++)
        free(strings[i]);
    ds_release(&ds);
    return rc;
}
