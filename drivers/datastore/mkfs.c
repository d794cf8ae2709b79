/*
 * mkfs IMAGE_ID  (stdin: DS_DRIVER_ACTION_DATA with IMAGE and DATASTORE)
 *
 * Two jobs behind one name (protocol §3.1, §5.3):
 *  - IMAGE/FORMAT=save_as: oned is allocating the target of a disk save-as.
 *    Print the path the copy will have, BASE_PATH/<hash>, and create nothing:
 *    the TM action cpds writes it (beside the name, then renamed).
 *  - otherwise: create an empty datablock of IMAGE/SIZE MB in FORMAT raw or
 *    qcow2 (swap: raw with a swap signature), optionally with a file system
 *    IMAGE/FS (one of SUPPORTED_FS). Built as <SOURCE>.part and renamed.
 * stdout: the SOURCE alone on one line (oned takes the whole line verbatim).
 */
#include "ds_actions.h"

#include "cleanup.h"
#include "config.h"
#include "dsutil.h"
#include "fsutil.h"
#include "hostpath.h"
#include "lock.h"
#include "log.h"
#include "num.h"
#include "qemu_img.h"

static int make_raw(const char *path, uint64_t size_mb, bool sparse)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    off_t size = (off_t)(size_mb << 20);

    if (fd < 0)
        return fail_errno("cannot create '%s'", path);
    if (ftruncate(fd, size) < 0)
        return fail_errno("cannot size '%s' to %llu MB", path, (unsigned long long)size_mb);
    if (!sparse && fallocate(fd, 0, 0, size) < 0)
        return fail_errno("cannot allocate %llu MB for '%s'", (unsigned long long)size_mb,
                          path);
    return 0;
}

static bool fs_supported(const char *fs)
{
    struct strvec list = STRVEC_INIT;
    _cleanup_free_ char *conf = xstrdup(config_str("SUPPORTED_FS"));
    bool ok = false;

    for (char *p = conf; *p; p++)
        if (*p == ',')
            *p = ' ';
    strvec_split(&list, conf);
    for (size_t i = 0; i < list.nr; i++)
        ok = ok || streq(list.v[i], fs);
    strvec_clear(&list);
    return ok;
}

/* mke2fs and mkfs.xfs discard the device first, which on a file punches
 * holes: the allocation SPARSE=NO asked for would be gone. */
static int run_mkfs(const char *fs, const char *path, bool sparse)
{
    struct cmd c = CMD_INIT;
    int rc;

    if (streq(fs, "swap")) {
        strvec_pushl(&c.args, "mkswap", "-L", "swap", path, NULL);
    } else if (streq(fs, "xfs")) {
        strvec_pushl(&c.args, "mkfs.xfs", "-q", "-f", NULL);
        if (!sparse)
            strvec_push(&c.args, "-K");
        strvec_push(&c.args, path);
    } else {
        strvec_pushl(&c.args, "mkfs", "-F", "-q", "-t", fs, NULL);
        if (!sparse && starts_with(fs, "ext"))
            strvec_pushl(&c.args, "-E", "nodiscard", NULL);
        strvec_push(&c.args, path);
    }
    rc = cmd_run(&c);
    cmd_release(&c);
    return rc;
}

static int build(const char *tmp, const char *format, const char *fs, uint64_t size_mb,
                 bool sparse)
{
    struct cmd c = CMD_INIT;
    _cleanup_free_ char *conv = NULL;
    int rc;

    if (streq(format, "qcow2") && str_empty(fs)) {
        qi_create(&c, "qcow2", tmp, size_mb, sparse ? 0 : QI_PREALLOC);
        rc = cmd_run(&c);
        cmd_release(&c);
        return rc;
    }
    if (make_raw(tmp, size_mb, sparse) < 0)
        return -1;
    if (!str_empty(fs) && run_mkfs(fs, tmp, sparse) < 0)
        return -1;
    if (!streq(format, "qcow2"))
        return 0;
    /* A file system inside qcow2 is made raw first, then converted. */
    conv = xasprintf("%s.conv", tmp);
    if (unlink_if_exists(conv) < 0)
        return -1;
    qi_convert(&c, tmp, "raw", conv, "qcow2", sparse ? 0 : QI_PREALLOC);
    rc = cmd_run(&c);
    cmd_release(&c);
    if (rc == 0 && rename(conv, tmp) < 0)
        rc = fail_errno("cannot rename '%s'", conv);
    if (rc < 0)
        unlink(conv);
    return rc;
}

int ds_mkfs(struct action_ctx *ctx)
{
    struct ds ds;
    struct lock lk = LOCK_INIT;
    _cleanup_free_ char *format = img_attr(ctx->ds, "FORMAT");
    _cleanup_free_ char *size = img_attr(ctx->ds, "SIZE");
    _cleanup_free_ char *fs = img_attr(ctx->ds, "FS");
    _cleanup_free_ char *source = NULL;
    _cleanup_free_ char *final = NULL;
    _cleanup_free_ char *tmp = NULL;
    const char *file_format;
    uint64_t size_mb;
    int rc = -1;

    if (ds_load(ctx->ds, &ds) < 0)
        return -1;
    source = ds_new_source(&ds, ctx->id);
    if (streq(format, "save_as")) {
        printf("%s\n", source);
        ds_release(&ds);
        return 0;
    }
    if (!streq(format, "raw") && !streq(format, "qcow2") && !streq(format, "swap")) {
        fail("cannot create a datablock in format '%s': qcow2c makes raw, qcow2 and swap",
             format ? format : "");
        goto out;
    }
    if (!size || parse_u64(size, UINT64_MAX >> 21, &size_mb) < 0 || size_mb == 0) {
        fail("the datablock SIZE '%s' is not a positive number of MB", size ? size : "");
        goto out;
    }
    if (streq(format, "swap")) {
        free(fs);
        fs = xstrdup("swap");
    } else if (!str_empty(fs) && !fs_supported(fs)) {
        fail("unsupported file system '%s' (SUPPORTED_FS is %s)", fs,
             config_str("SUPPORTED_FS"));
        goto out;
    }
    file_format = streq(format, "qcow2") ? "qcow2" : "raw";
    final = path_normalize(source);
    tmp = part_name(final);
    if (mkdir_p(ds.base_norm, 0755) < 0 ||
        lock_take_path(&lk, final, config_uint("LOCK_TIMEOUT")) < 0 ||
        unlink_if_exists(tmp) < 0)
        goto out;
    if (build(tmp, file_format, fs, size_mb, ds.sparse) < 0) {
        unlink(tmp);
        goto out;
    }
    if (ds_verify_and_publish(tmp, final, file_format) < 0)
        goto out;
    printf("%s\n", source);
    rc = 0;
out:
    lock_release(&lk);
    ds_release(&ds);
    return rc;
}
