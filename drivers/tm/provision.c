/* provision.c - argument checks and host steps shared by the actions that
 * put disks in place; see provision.h. */
#include "provision.h"

#include <inttypes.h>

#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "num.h"
#include "qemu_img.h"

/* ---- arguments ---- */

int prov_disk_arg(const char *arg, int vmid, struct vm_path *vp)
{
    if (vm_path_parse(arg, vmid, "destination", vp) < 0)
        return -1;
    if (!vp->host || vp->kind != VM_PATH_DISK) {
        fail("the destination '%s' is not of the form host:<datastores>/<ds id>/%d/disk.<n>", arg,
             vmid);
        vm_path_release(vp);
        return -1;
    }
    return 0;
}

int prov_ds_id(const char *arg, int *id)
{
    if (parse_id(arg, id) < 0)
        return fail("'%s' is not a valid datastore id", arg);
    return 0;
}

int prov_source(const char *arg, int ds_id, struct hostpath *hp)
{
    _cleanup_free_ char *dir = NULL;
    int parent;

    if (hostpath_parse(arg, "image", hp) < 0)
        return -1;
    dir = path_dirname(hp->path);
    if (parse_id(path_basename(dir), &parent) < 0 || parent != ds_id) {
        fail("the image '%s' is not a file of datastore %d (<datastores>/%d/<name>)", arg, ds_id,
             ds_id);
        hostpath_release(hp);
        return -1;
    }
    return 0;
}

int prov_size_mb(const char *arg, const char *what, uint64_t *mb)
{
    /* qemu-img takes the size in bytes as a signed 64-bit number */
    if (parse_u64(arg, UINT64_MAX >> 21, mb) < 0 || *mb == 0)
        return fail("the %s '%s' is not a positive number of MB", what, arg);
    return 0;
}

/* ---- host steps ---- */

/* $1 what to do with .monitor, $2 its path, then the directories to make.
 * "ssh" is written as OpenNebula's enable_local_monitoring writes it, and
 * only when it differs (the host probe may be reading it). */
static const char prepare_script[] =
    "m=$1 f=$2; shift 2; mkdir -p -- \"$@\" || exit 1; case $m in "
    "off) rm -f -- \"$f\" ;; "
    "ssh) [ \"$(cat -- \"$f\" 2>/dev/null)\" = ssh ] || "
    "{ printf 'ssh\\n' >\"$f.part\" && mv -fT -- \"$f.part\" \"$f\"; } ;; esac";

int prov_prepare(struct host *h, const struct vm_path *vp, enum prov_monitor m, const char *extra)
{
    _cleanup_free_ char *monitor = path_join(vp->ds_dir, ".monitor");
    static const char *const modes[] = { "keep", "off", "ssh" };

    return host_runl(h, "sh", "-c", prepare_script, "sh", modes[m], monitor, vp->vm_dir, extra,
                     NULL);
}

/* The new link's name is the shell's own: two VMs linking the same CD-ROM
 * image's SOURCE.snap/0 at once do not collide. */
static const char symlink_script[] =
    "t=\"$2.lnk.$$\"; rm -f -- \"$t\" && ln -s -- \"$1\" \"$t\" && mv -fT -- \"$t\" \"$2\"";

int prov_symlink(struct host *h, const char *target, const char *link)
{
    return host_runl(h, "sh", "-c", symlink_script, "sh", target, link, NULL);
}

/* $1 source, $2 destination, $3 grown size in bytes (or empty), $4 the
 * part to copy into. Prints "kept" when $2 is already a complete copy. */
static const char copy_script[] =
    "if [ -f \"$2\" ] && [ ! -L \"$2\" ]; then "
    "d=$(stat -c '%.9Y %s' -- \"$2\") && s=$(stat -L -c '%.9Y %s' -- \"$1\") || exit 1; "
    "if [ \"$d\" = \"$s\" ] || [ \"$d\" = \"${s%% *} $3\" ]; then echo kept; exit 0; fi; "
    "fi; "
    "rm -f -- \"$2\".part* && cp -- \"$1\" \"$4\" || { rm -f -- \"$4\"; exit 1; }";

/* $1 source, $2 part, $3 destination: the source's time marks a complete
 * copy; flushed, renamed, directory flushed. */
static const char finish_script[] =
    "touch -r \"$1\" -- \"$2\" && sync -- \"$2\" && mv -fT -- \"$2\" \"$3\" && "
    "sync -- \"${3%/*}\"";

int prov_copy_start(struct host *h, const char *src, const char *dst, uint64_t grown_size,
                    char **part)
{
    _cleanup_free_ char *tmp = xasprintf("%s.part.%ld", dst, (long)getpid());
    struct cmd c = CMD_INIT;
    int rc;

    *part = NULL;
    strvec_pushl(&c.args, "sh", "-c", copy_script, "sh", src, dst, NULL);
    if (grown_size)
        strvec_pushf(&c.args, "%" PRIu64, grown_size);
    else
        strvec_push(&c.args, "");
    strvec_push(&c.args, tmp);
    c.timeout_s = config_uint("COPY_TIMEOUT");
    rc = host_run(h, &c);
    if (rc == 0 && !starts_with(c.out.buf, "kept"))
        *part = TAKE_PTR(tmp);
    cmd_release(&c);
    return rc;
}

int prov_copy_finish(struct host *h, const char *src, const char *part, const char *dst)
{
    return host_runl(h, "sh", "-c", finish_script, "sh", src, part, dst, NULL);
}

int prov_copy(struct host *h, const char *src, const char *dst, uint64_t grown_size)
{
    _cleanup_free_ char *part = NULL;

    if (prov_copy_start(h, src, dst, grown_size, &part) < 0)
        return -1;
    if (!part) {
        log_info("%s:%s is already a complete copy", host_name(h), dst);
        return 0;
    }
    return prov_copy_finish(h, src, part, dst);
}

static const char publish_script[] =
    "sync -- \"$1\" && mv -fT -- \"$1\" \"$2\" && sync -- \"${2%/*}\"";

int prov_publish(struct host *h, const char *tmp, const char *final)
{
    return host_runl(h, "sh", "-c", publish_script, "sh", tmp, final, NULL);
}

int prov_probe_source(struct host *h, const char *fe_path, const char *host_path,
                      struct image_info *ii)
{
    if (access(fe_path, F_OK) == 0) {
        if (image_probe_path(fe_path, ii) == 0)
            return 0;
        /* there but unreadable here: the host may do better */
        fail_reset();
    }
    return host_probe_image(h, host_path, ii);
}

static int file_size(struct host *h, const char *path, uint64_t *size)
{
    struct cmd c = CMD_INIT;
    int rc;

    strvec_pushl(&c.args, "stat", "-L", "-c", "%s", "--", path, NULL);
    rc = host_run(h, &c);
    sbuf_rtrim(&c.out);
    if (rc == 0 && parse_u64(c.out.buf, UINT64_MAX, size) < 0)
        rc = fail("unexpected size '%s' of %s:%s", c.out.buf, host_name(h), path);
    cmd_release(&c);
    return rc;
}

int prov_grow(struct host *h, const char *path, const char *fmt, uint64_t size_mb, bool sparse,
              bool strict)
{
    struct image_info ii = { 0 };
    _cleanup_free_ char *format = NULL;
    struct cmd c = CMD_INIT;
    uint64_t cur, want = size_mb << 20;
    int rc;

    if (streq(fmt, "raw")) {
        if (file_size(h, path, &cur) < 0)
            return -1;
        format = xstrdup("raw");
    } else {
        if (host_probe_image(h, path, &ii) < 0)
            return -1;
        format = xstrdup(ii.format);
        cur = ii.virtual_size;
        if (fmt && !streq(fmt, ii.format))
            rc = fail("%s:%s is a %s image, not %s", host_name(h), path, ii.format, fmt);
        else if (!ii.size_known)
            rc = fail("cannot tell the size of %s:%s (%s)", host_name(h), path, ii.format);
        else
            rc = 0;
        image_info_release(&ii);
        if (rc < 0)
            return -1;
    }
    if (cur == want)
        return 0;
    if (cur > want) {
        if (!strict)
            return 0;
        return fail("%s:%s is %" PRIu64 " MB, more than the %" PRIu64
                    " MB asked: disks are never shrunk",
                    host_name(h), path, (cur + (1 << 20) - 1) >> 20, size_mb);
    }
    log_info("growing %s from %" PRIu64 " to %" PRIu64 " MB", path, cur >> 20, size_mb);
    qi_resize(&c, path, format, size_mb, sparse ? 0 : QI_PREALLOC);
    rc = host_run(h, &c);
    cmd_release(&c);
    return rc;
}
