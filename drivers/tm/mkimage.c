/*
 * mkimage SIZE_MB FORMAT HOST:VM_DIR/disk.N VM_ID DS_ID
 *
 * A volatile disk (DISK TYPE=fs; protocol §2.3 mkimage), run with the system
 * datastore's TM: DS_ID is the system datastore. On HOST, disk.N becomes a
 * new plain file (no snapshot directory, as stock) of SIZE_MB MB in FORMAT
 * raw or qcow2: `qemu-img create`, or, when the disk has a file system
 * (DISK/FS from oned, one of SUPPORTED_FS), a raw file formatted with mkfs
 * and converted to qcow2 when FORMAT is qcow2. mkswap shares this code
 * (FORMAT swap: raw with `mkswap -L swap`).
 *
 * The file is built as disk.N.part.<pid> and renamed over disk.N, so a
 * re-run (which can only come before the VM used the disk: a prolog retry,
 * a new hot attach) removes what earlier attempts left, builds it again and
 * never leaves a half-made disk.N.
 * Refused: a size that is not a positive number of MB, another FORMAT
 * (stock would make a raw file the VM then opens with the wrong driver), a
 * file system not in SUPPORTED_FS (FS_OPTS_<fs> of OpenNebula's
 * datastore.conf are not read), a destination other than disk.N of this VM.
 */
#include "tm_actions.h"

#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "provision.h"
#include "qemu_img.h"

/* mkfs and mkswap live in /sbin, which a user's ssh session may lack. */
#define SBIN_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static bool fs_supported(const char *fs)
{
    _cleanup_free_ char *conf = xstrdup(config_str("SUPPORTED_FS"));
    struct strvec list = STRVEC_INIT;
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

static int run(struct host *h, struct cmd *c)
{
    int rc = host_run(h, c);

    cmd_release(c);
    return rc;
}

static int format_part(struct host *h, const char *fs, const char *part)
{
    struct cmd c = CMD_INIT;

    strvec_push(&c.env, SBIN_PATH);
    if (streq(fs, "swap"))
        strvec_pushl(&c.args, "mkswap", "-L", "swap", part, NULL);
    else if (streq(fs, "xfs"))
        strvec_pushl(&c.args, "mkfs.xfs", "-q", "-f", part, NULL);
    else
        strvec_pushl(&c.args, "mkfs", "-F", "-q", "-t", fs, part, NULL);
    return run(h, &c);
}

/* $1 disk.N: the files of earlier attempts (disk.N.part*) go. */
static const char clean_script[] = "rm -f -- \"$1\".part*";

static int build(struct host *h, const char *disk, const char *format, const char *fs,
                 uint64_t size_mb, const char *part)
{
    _cleanup_free_ char *conv = xasprintf("%s.conv", part);
    struct cmd c = CMD_INIT;

    if (host_runl(h, "sh", "-c", clean_script, "sh", disk, NULL) < 0)
        return -1;
    if (str_empty(fs)) {
        qi_create(&c, format, part, size_mb, 0);
        return run(h, &c);
    }
    qi_create(&c, "raw", part, size_mb, 0);
    if (run(h, &c) < 0 || format_part(h, fs, part) < 0)
        return -1;
    if (!streq(format, "qcow2"))
        return 0;
    qi_convert(&c, part, "raw", conv, "qcow2", 0);
    if (run(h, &c) < 0)
        return -1;
    return host_rename(h, conv, part);
}

int prov_volatile(struct action_ctx *ctx, const char *size, const char *format, const char *dst)
{
    struct tm t;
    struct vm_path vp = { 0 };
    _cleanup_free_ char *fs = NULL;
    _cleanup_free_ char *part = NULL;
    const char *file_format;
    struct host *h;
    uint64_t mb;
    int ds_id, rc = -1;

    if (tm_start(&t, ctx) < 0)
        return -1;
    if (prov_size_mb(size, "size", &mb) < 0 || prov_ds_id(ctx->argv[ctx->argc - 1], &ds_id) < 0 ||
        prov_disk_arg(dst, t.vmid, &vp) < 0)
        goto out;
    if (!streq(format, "raw") && !streq(format, "qcow2") && !streq(format, "swap")) {
        fail("cannot make a volatile disk in format '%s': qcow2c makes raw and qcow2", format);
        goto out;
    }
    if (streq(format, "swap")) {
        fs = xstrdup("swap");
    } else {
        if (tm_disk_attr(&t, vp.disk_id, "FS", &fs) < 0)
            goto out;
        if (!str_empty(fs) && !fs_supported(fs)) {
            fail("unsupported file system '%s' (SUPPORTED_FS is %s)", fs,
                 config_str("SUPPORTED_FS"));
            goto out;
        }
    }
    file_format = streq(format, "qcow2") ? "qcow2" : "raw";
    /* this attempt's own name: a killed attempt's mkfs, still running on
     * HOST, writes a file that is gone */
    part = xasprintf("%s.part.%ld", vp.path, (long)getpid());
    h = tm_host(&t, vp.host);
    log_info("making %s:%s, %llu MB %s%s%s", vp.host, vp.path, (unsigned long long)mb, file_format,
             str_empty(fs) ? "" : " with ", str_empty(fs) ? "" : fs);
    if (!h || prov_prepare(h, &vp, PROV_MONITOR_KEEP, NULL) < 0)
        goto out;
    if (build(h, vp.path, file_format, fs, mb, part) < 0 || prov_publish(h, part, vp.path) < 0) {
        /* best effort: the reason is the failure above */
        host_runl(h, "sh", "-c", clean_script, "sh", vp.path, NULL);
        goto out;
    }
    rc = 0;
out:
    vm_path_release(&vp);
    tm_end(&t);
    return rc;
}

int tm_mkimage(struct action_ctx *ctx)
{
    return prov_volatile(ctx, ctx->argv[0], ctx->argv[1], ctx->argv[2]);
}
