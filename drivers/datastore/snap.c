/*
 * snap_delete / snap_revert / snap_flatten IMAGE_ID
 * (stdin: DS_DRIVER_ACTION_DATA; IMAGE/SOURCE, IMAGE/FORMAT and
 * IMAGE/TARGET_SNAPSHOT = the snapshot id)
 *
 * Snapshots of a persistent image, in the layout the qcow2/qcow2c TM leaves
 * in the image datastore (protocol §2.2): SOURCE.snap/0 -> SOURCE, and
 * SOURCE.snap/K+1 an overlay created on SOURCE.snap/K when snapshot K was
 * taken. File K therefore holds snapshot K, and the highest-numbered file is
 * the image's current state. stdout: nothing.
 *
 *  - snap_delete: a snapshot file that other files use as their backing file
 *    is merged into them first (safe rebase), then removed, so the chain can
 *    never break (OpenNebula's fs driver just deletes the file). Deleting a
 *    snapshot that is already gone succeeds.
 *  - snap_revert: the current state becomes a new empty overlay on the
 *    snapshot, created beside and renamed over the old one. This does not
 *    depend on the datastore's TM_MAD being spelled "qcow2" (trap 14).
 *  - snap_flatten: the snapshot, flattened to a standalone file, becomes the
 *    image (written beside, checked, renamed), and SOURCE.snap goes.
 * raw images keep plain copies: SOURCE.snap/K is a full copy.
 */
#include "ds_actions.h"

#include <dirent.h>

#include "cleanup.h"
#include "config.h"
#include "dsutil.h"
#include "fsutil.h"
#include "hostpath.h"
#include "image.h"
#include "lock.h"
#include "log.h"
#include "num.h"
#include "qemu_img.h"
#include "copy.h"

struct snap_job {
    struct ds ds;
    struct lock lk;
    char *source;   /* normalised SOURCE */
    char *snap_dir; /* SOURCE.snap */
    char *snap;     /* SOURCE.snap/<id> */
    char *format;
    int id;
};

static int job_open(struct action_ctx *ctx, struct snap_job *j)
{
    _cleanup_free_ char *source = img_attr(ctx->ds, "SOURCE");
    _cleanup_free_ char *target = img_attr(ctx->ds, "TARGET_SNAPSHOT");

    memset(j, 0, sizeof(*j));
    j->lk.fd = -1;
    if (ds_load(ctx->ds, &j->ds) < 0)
        return -1;
    if (!target || parse_id(target, &j->id) < 0)
        return fail("the image snapshot id '%s' is not valid", target ? target : "");
    if (ds_check_source(&j->ds, source, &j->source) < 0)
        return -1;
    j->format = img_attr(ctx->ds, "FORMAT");
    if (!j->format)
        j->format = xstrdup("");
    j->snap_dir = xasprintf("%s.snap", j->source);
    j->snap = xasprintf("%s/%d", j->snap_dir, j->id);
    return lock_take_path(&j->lk, j->source, config_uint("LOCK_TIMEOUT"));
}

static void job_close(struct snap_job *j)
{
    lock_release(&j->lk);
    ds_release(&j->ds);
    free(j->source);
    free(j->snap_dir);
    free(j->snap);
    free(j->format);
}

/* Numeric file names in the snapshot directory, as full paths. */
static int snap_files(const char *dir, struct strvec *out)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return errno == ENOENT ? 0 : fail_errno("cannot read '%s'", dir);
    while ((de = readdir(d))) {
        uint64_t v;

        if (parse_u64(de->d_name, INT_MAX, &v) == 0)
            strvec_pushf(out, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    return 0;
}

/* Resolves a backing file name the way QEMU does: relative to the
 * directory of the image that names it. */
static char *resolve_backing(const char *image, const char *backing)
{
    _cleanup_free_ char *dir = path_dirname(image);
    _cleanup_free_ char *joined = backing[0] == '/' ? xstrdup(backing) : path_join(dir, backing);

    return realpath(joined, NULL);
}

/* Merges `snap` into every file that uses it as backing file. */
static int detach_children(const char *snap, const struct image_info *si, const char *dir)
{
    struct strvec files = STRVEC_INIT;
    _cleanup_free_ char *snap_real = realpath(snap, NULL);
    int rc = 0;

    if (!snap_real || snap_files(dir, &files) < 0)
        return snap_real ? -1 : fail_errno("cannot resolve '%s'", snap);
    for (size_t i = 0; i < files.nr && rc == 0; i++) {
        struct image_info ci;
        _cleanup_free_ char *b = NULL;

        if (streq(files.v[i], snap) || image_probe_path(files.v[i], &ci) < 0)
            continue;
        if (ci.backing_file)
            b = resolve_backing(files.v[i], ci.backing_file);
        if (b && streq(b, snap_real)) {
            struct cmd c = CMD_INIT;

            log_info("merging snapshot %s into %s", snap, files.v[i]);
            qi_rebase(&c, files.v[i], si->backing_file ? si->backing_file : "",
                      si->backing_format ? si->backing_format : "qcow2", false, 0);
            rc = cmd_run(&c);
            cmd_release(&c);
        }
        image_info_release(&ci);
    }
    strvec_clear(&files);
    return rc;
}

int ds_snap_delete(struct action_ctx *ctx)
{
    struct snap_job j;
    struct image_info si = { 0 };
    _cleanup_free_ char *head = NULL;
    struct stat st;
    int rc = -1;

    if (job_open(ctx, &j) < 0)
        goto out;
    if (lstat(j.snap, &st) < 0) {
        log_info("snapshot %d of image %d is already gone", j.id, ctx->id);
        rc = 0;
        goto out;
    }
    head = ds_image_head(j.source);
    if (streq(head, j.snap)) {
        fail("snapshot %d holds the image's current state and cannot be deleted", j.id);
        goto out;
    }
    /* Whatever FORMAT says: a raw image's snapshots are qcow2 overlays too
     * when a VM took them (only full copies have no children). */
    if (image_probe_path(j.snap, &si) < 0 || detach_children(j.snap, &si, j.snap_dir) < 0)
        goto out;
    if (unlink(j.snap) < 0 && errno != ENOENT) {
        fail_errno("cannot delete '%s'", j.snap);
        goto out;
    }
    rc = fsync_dir_of(j.snap);
out:
    image_info_release(&si);
    job_close(&j);
    return rc;
}

static int revert_qcow2(struct snap_job *j)
{
    _cleanup_free_ char *head = ds_image_head(j->source);
    _cleanup_free_ char *tmp = NULL;
    _cleanup_free_ char *backing = NULL;
    struct image_info hi, si;
    const char *snap_format;
    struct cmd c = CMD_INIT;
    int rc;

    if (streq(head, j->source) || streq(head, j->snap))
        return fail("image %s has no current state above snapshot %d to revert", j->source,
                    j->id);
    /* Keep the naming style of the chain: relative names need the
     * SOURCE.snap/<name>.snap self link, absolute ones do not. */
    if (image_probe_path(head, &hi) < 0)
        return -1;
    if (hi.backing_file && hi.backing_file[0] != '/')
        backing = xasprintf("%s.snap/%d", path_basename(j->source), j->id);
    else
        backing = xstrdup(j->snap);
    image_info_release(&hi);
    /* Snapshot 0 of a raw image is the raw SOURCE itself. */
    if (image_probe_path(j->snap, &si) < 0)
        return -1;
    snap_format = si.format; /* a static string */
    image_info_release(&si);
    tmp = part_name(head);
    if (unlink_if_exists(tmp) < 0)
        return -1;
    qi_create_overlay(&c, tmp, backing, snap_format);
    c.dir = j->snap_dir;
    rc = cmd_run(&c);
    cmd_release(&c);
    if (rc == 0)
        rc = publish(tmp, head);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* Whether the image's current state is a qcow2 overlay in SOURCE.snap: how
 * a VM's snapshots are kept, whatever the image's FORMAT. */
static bool head_is_overlay(const struct snap_job *j)
{
    _cleanup_free_ char *head = ds_image_head(j->source);
    struct image_info hi;
    bool overlay;

    if (streq(head, j->source) || image_probe_path(head, &hi) < 0) {
        fail_reset();
        return false;
    }
    overlay = hi.backing_file != NULL;
    image_info_release(&hi);
    return overlay;
}

static int revert_raw(struct snap_job *j)
{
    _cleanup_free_ char *tmp = part_name(j->source);
    struct copy_result res;

    if (unlink_if_exists(tmp) < 0 || copy_file(j->snap, tmp, j->ds.sparse, &res) < 0)
        return -1;
    if (publish(tmp, j->source) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int ds_snap_revert(struct action_ctx *ctx)
{
    struct snap_job j;
    int rc = -1;

    if (job_open(ctx, &j) < 0)
        goto out;
    if (access(j.snap, F_OK) < 0) {
        fail_errno("snapshot %d of image %d is missing (%s)", j.id, ctx->id, j.snap);
        goto out;
    }
    rc = streq(j.format, "qcow2") || head_is_overlay(&j) ? revert_qcow2(&j) : revert_raw(&j);
out:
    job_close(&j);
    return rc;
}

int ds_snap_flatten(struct action_ctx *ctx)
{
    struct snap_job j;
    struct image_info si = { 0 };
    _cleanup_free_ char *tmp = NULL;
    _cleanup_free_ char *snap_real = NULL;
    _cleanup_free_ char *source_real = NULL;
    int rc = -1;

    if (job_open(ctx, &j) < 0)
        goto out;
    if (access(j.snap, F_OK) < 0) {
        if (access(j.snap_dir, F_OK) < 0 && access(j.source, F_OK) == 0) {
            log_info("image %d was already flattened", ctx->id);
            rc = 0;
        } else {
            fail_errno("snapshot %d of image %d is missing (%s)", j.id, ctx->id, j.snap);
        }
        goto out;
    }
    tmp = part_name(j.source);
    if (unlink_if_exists(tmp) < 0 || image_probe_path(j.snap, &si) < 0)
        goto out;
    snap_real = realpath(j.snap, NULL);
    source_real = realpath(j.source, NULL);
    if (snap_real && source_real && streq(snap_real, source_real)) {
        /* Snapshot 0 -> SOURCE: SOURCE already holds it. */
    } else if (streq(j.format, "qcow2") || si.backing_file) {
        /* An overlay (a raw image's snapshots are overlays too when a VM
         * took them) is flattened into the image's own format. */
        const char *out_fmt = streq(j.format, "raw") ? "raw" : "qcow2";
        struct cmd c = CMD_INIT;

        qi_convert(&c, j.snap, si.format, tmp, out_fmt, j.ds.sparse ? 0 : QI_PREALLOC);
        rc = cmd_run(&c);
        cmd_release(&c);
        if (rc < 0 || (rc = ds_verify_and_publish(tmp, j.source, out_fmt)) < 0) {
            unlink(tmp);
            goto out;
        }
    } else if ((rc = rename(j.snap, j.source)) < 0) {
        fail_errno("cannot move '%s' to '%s'", j.snap, j.source);
        goto out;
    }
    rc = rm_rf(j.snap_dir);
out:
    image_info_release(&si);
    job_close(&j);
    return rc;
}
