/*
 * cpds     HOST:VM_DIR/disk.N NEW_SOURCE SNAP_ID VM_ID DS_ID
 * cpds.ssh HOST:VM_DIR/disk.N NEW_SOURCE SNAP_ID VM_ID DS_ID
 *
 * Disk save-as (onevm disk-saveas; protocol §2.3 cpds, §3.1, traps 8, 19,
 * 32): NEW_SOURCE (a bare path in image datastore DS_ID, allocated by DS
 * mkfs, not created yet) becomes a standalone copy of disk N of a VM that
 * is powered off, suspended, undeployed or stopped (LCM 27, 28, 67, 68),
 * or of one of its snapshots. HOST is the VM's host, or the front-end for
 * an undeployed or stopped VM. Reads LCM_STATE and DISK[DISK_ID=N]/
 * {FORMAT, DRIVER, CLONE, SOURCE, SPARSE} from oned.
 *  - The source: SNAP_ID -1, the disk's current state (disk.N and the
 *    whole chain behind it); SNAP_ID K, the file of snapshot K:
 *    VM_DIR/disk.N.snap/K (CLONE=YES, and always for cpds.ssh) or, for a
 *    persistent disk on a shared system datastore, SOURCE.snap/K in the
 *    image datastore; K.current beside it names the file snapshot K lives
 *    in since a live delete (taken in the same directory).
 *  - The copy, on HOST: NEW_SOURCE rewritten to HOST's datastore root (as
 *    OpenNebula), written as NEW_SOURCE.part in exactly the disk's FORMAT
 *    (oned records that FORMAT for the new image and forces it on every VM
 *    that uses it): qcow2 flattened by qemu-img convert (SPARSE=NO
 *    preallocates), any other format copied byte for byte (cp, as
 *    OpenNebula); flushed; with VERIFY_COPIES, qemu-img check and a
 *    comparison with the source (qemu-img compare, cmp for byte copies);
 *    renamed to NEW_SOURCE; directory flushed.
 *  - The front-end lock of NEW_SOURCE (the lock DS rm takes) is held
 *    throughout, so deleting the LOCKED image waits for the copy and then
 *    removes it, instead of leaving an orphan (trap 19).
 * As OpenNebula: when the source is a link resolving to NEW_SOURCE itself
 * there is nothing to copy.
 * A running VM (LCM 26, HOTPLUG_SAVEAS; the host runs it under libvirt,
 * DEPLOY_ID its domain, DISK/TARGET its disk):
 *  - SNAP_ID K: a snapshot is a frozen file and is copied as above (read
 *    with -U, a backing file of the running disk).
 *  - SNAP_ID -1, the hot save (hotsave.c), one instant for every block:
 *    the image NEW_SOURCE belongs to is looked up first (DISK/
 *    HOTPLUG_SAVE_AS when it names it, else the image pool by SOURCE);
 *    then, in one command on HOST, the guest's file systems are frozen
 *    (virsh domfsfreeze; bounded, and thawed after ANY attempt but a
 *    refused one, also when the command is killed), a temporary overlay
 *    <snap dir>/hotsave.<K>.<pid>.<ms> is put on the disk only (virsh
 *    snapshot-create-as --disk-only --atomic --no-metadata, snapshot='no'
 *    for every other disk; <snap dir> is where the disk's snapshots live,
 *    made for a disk without one and removed again), the guest is thawed:
 *    frozen for the snapshot, not for the copy (one virsh session, opened
 *    before the freeze, carries the three commands). disk.N, a link to
 *    snapshot file K, points to the overlay until the merge, so that the
 *    guest's writes made meanwhile stay under disk.N even if the action
 *    dies. Without an agent (or when
 *    the freeze fails or times out) no suspend: the atomic snapshot is
 *    itself an instant of the disk (QEMU drains it and switches layers
 *    between two requests), crash-consistent as after a power cut, and
 *    suspending the vCPUs adds nothing for one disk but a longer stall;
 *    HOT_SAVE_REQUIRE_FREEZE=yes refuses instead. The layer below the
 *    overlay, frozen from then on, is copied as above, always checked and
 *    compared (qemu-img compare -U) and its virtual size checked; what was
 *    achieved goes into the image's template with one.image.update
 *    (append): HOT_SAVE_CONSISTENCY filesystem-frozen or crash-consistent,
 *    HOT_SAVE_INSTANT (UTC, when the overlay was in place), HOT_SAVE_VM_ID,
 *    HOT_SAVE_DISK_ID, HOT_SAVE_TARGET, HOT_SAVE_NOTE; then the copy is
 *    renamed; then the overlay is merged back into the layer below it and
 *    only that one (virsh blockcommit --active --shallow --base <it>
 *    --pivot, bounded by COPY_TIMEOUT), disk.N pointed back to K in the
 *    same command, and the overlay removed. Every virsh call is bounded
 *    (timeout(1) on HOST; the agent min(60 s, TIMEOUT)).
 *  - A re-run (a new save of the disk, an action killed at any point, a
 *    merge that failed) first brings the domain back on its own disk, read
 *    from virsh dumpxml and blockjob: a merge job an earlier run left is
 *    pivoted when ready and aborted and done again otherwise, an overlay
 *    of ours that is the active layer is merged back, disk.N pointed back
 *    to K, hotsave files the domain does not use are removed (but the one
 *    of a snapshot-create-as that never answered: libvirt may still be
 *    making it; the next save removes it).
 *  - Failure after the snapshot: the .part is removed and the domain put
 *    back on its disk before the action fails, so the VM runs on its
 *    original disk with no overlay, job or partial file; when even the
 *    merge fails (after three attempts) the line says so and the next save
 *    merges it first.
 * Failure at any step: NEW_SOURCE is untouched (a complete earlier copy
 * stays, nothing partial appears), NEW_SOURCE.part is removed, one line
 * says why. A re-run starts by removing a .part that an interrupted run
 * left and replaces a NEW_SOURCE of an earlier attempt.
 * Refused: a disk path other than host:<vm dir>/disk.N of this VM, a
 * NEW_SOURCE that is not <datastores>/DS_ID/<name> or has a host part, a
 * SNAP_ID that is not -1 or a snapshot number, a .current naming no
 * snapshot file; for the hot save, a DEPLOY_ID virsh could take for an
 * option, an LXC VM, a NEW_SOURCE no image in oned has (deleted: nothing is
 * written), a temporary overlay below the active layer (a snapshot was
 * taken on it) and a block job on the disk that is not ours.
 */
#include "tm_actions.h"

#include "cleanup.h"
#include "config.h"
#include "hostpath.h"
#include "hotsave.h"
#include "log.h"
#include "num.h"
#include "provision.h"
#include "qemu_img.h"
#include "transfer.h"

static void cpds_release(struct cpds *c)
{
    vm_path_release(&c->vp);
    free(c->target);
    free(c->dst);
    free(c->part);
    free(c->src);
    free(c->format);
}

static int parse_args(struct cpds *c, struct action_ctx *ctx)
{
    struct hostpath hp;
    int ds_id;

    if (parse_snap_id(ctx->argv[2], &c->snap_id) < 0)
        return fail("'%s' is not a snapshot id (-1 or a number)", ctx->argv[2]);
    if (prov_ds_id(ctx->argv[4], &ds_id) < 0 ||
        vm_path_parse(ctx->argv[0], c->t->vmid, "disk", &c->vp) < 0)
        return -1;
    if (!c->vp.host || c->vp.kind != VM_PATH_DISK)
        return fail("the disk '%s' is not of the form host:<datastores>/<ds id>/%d/disk.<n>",
                    ctx->argv[0], c->t->vmid);
    if (prov_source(ctx->argv[1], ds_id, &hp) < 0)
        return -1;
    if (hp.host) {
        hostpath_release(&hp);
        return fail("the new image '%s' has a host part: oned writes it as a bare path",
                    ctx->argv[1]);
    }
    c->target = TAKE_PTR(hp.path);
    hostpath_release(&hp);
    c->dst = image_path_on_host(&c->vp, c->target);
    c->part = xasprintf("%s.part", c->dst);
    return 0;
}

/* What oned says about the disk; the file to copy. */
static int read_vm(struct cpds *c)
{
    _cleanup_free_ char *clone = NULL, *source = NULL, *sparse = NULL;
    int lcm, n = c->vp.disk_id;

    if (tm_lcm_state(c->t, &lcm) < 0 || tm_disk_attr(c->t, n, "FORMAT", &c->format) < 0 ||
        tm_disk_attr(c->t, n, "CLONE", &clone) < 0 ||
        tm_disk_attr(c->t, n, "SOURCE", &source) < 0 ||
        tm_disk_attr(c->t, n, "SPARSE", &sparse) < 0)
        return fail_context("cannot save disk %d of VM %d", n, c->t->vmid);
    if (str_empty(c->format)) {
        free(c->format);
        if (tm_disk_attr(c->t, n, "DRIVER", &c->format) < 0)
            return -1;
    }
    c->running = lcm == LCM_HOTPLUG_SAVEAS;
    c->hot = c->running && c->snap_id < 0;
    c->sparse = !is_no(sparse);
    if (c->hot) {
        /* the domain's chain is the source (hotsave.c) */
    } else if (c->snap_id < 0) {
        c->src = xstrdup(c->vp.path);
    } else if (!c->t->ssh_mode && !streq(clone, "YES")) {
        _cleanup_free_ char *img = NULL;

        if (str_empty(source))
            return fail("disk %d of VM %d is persistent but has no SOURCE", n, c->t->vmid);
        img = image_path_on_host(&c->vp, source);
        c->src = xasprintf("%s.snap/%d", img, c->snap_id);
    } else {
        c->src = xasprintf("%s.snap/%d", c->vp.path, c->snap_id);
    }
    return 0;
}

/* $1 source, $2 destination: removes a leftover $2.part, follows
 * $1.current, prints the source, its canonical path, then "same" (a link
 * to $2 itself), "ok" or "missing". */
static const char prepare_script[] =
    "s=$1 d=$2; rm -f -- \"$d.part\" || exit 1; "
    "if [ -f \"$s.current\" ]; then c=$(cat -- \"$s.current\") || exit 1; "
    "s=${s%/*}/${c##*/}; fi; r=$(readlink -f -- \"$s\") || r=$s; "
    "printf '%s\\0%s\\0' \"$s\" \"$r\"; "
    "if [ -L \"$s\" ] && [ \"$r\" = \"$(readlink -f -- \"$d\")\" ]; then "
    "printf 'same\\0'; elif [ -e \"$s\" ]; then printf 'ok\\0'; else printf 'missing\\0'; fi";

static int prepare(struct cpds *c, bool *same)
{
    _cleanup_free_ char *what = xasprintf("examining %s", c->src);
    struct sbuf out = SBUF_INIT;
    struct strvec r = STRVEC_INIT;
    int id, rc;

    *same = false;
    rc = xfer_sh(c->h, what, 0, &out, prepare_script, c->src, c->dst, NULL);
    xfer_split0(&out, &r);
    if (rc == 0 && r.nr != 3)
        rc = fail("unexpected answer from %s while examining %s", host_name(c->h), c->src);
    if (rc == 0 && !streq(r.v[0], c->src)) {
        /* K.current: the snapshot lives in another file of the directory */
        if (parse_id(path_basename(r.v[0]), &id) < 0) {
            rc = fail("%s.current on %s names '%s', not a snapshot file", c->src, host_name(c->h),
                      path_basename(r.v[0]));
        } else {
            log_info("snapshot %d lives in %s now (%s.current)", c->snap_id, r.v[0], c->src);
            free(c->src);
            c->src = xstrdup(r.v[0]);
        }
    }
    if (rc == 0 && streq(r.v[2], "missing"))
        rc = fail("%s does not exist on %s", c->src, host_name(c->h));
    if (rc == 0)
        *same = streq(r.v[2], "same");
    if (rc == 0 && !*same && !streq(r.v[1], c->src)) {
        /* qemu resolves relative backing names from the file's own
         * directory, not from a link's: read the chain where it lives */
        free(c->src);
        c->src = xstrdup(r.v[1]);
    }
    strvec_clear(&r);
    sbuf_release(&out);
    return rc;
}

/* The format to write: oned's FORMAT (DRIVER), else the source's header. */
static int decide_format(struct cpds *c)
{
    struct image_info ii;

    if (!str_empty(c->format))
        return 0;
    if (host_probe_image(c->h, c->src, &ii) < 0)
        return -1;
    free(c->format);
    c->format = xstrdup(ii.format);
    image_info_release(&ii);
    log_info("disk %d has no FORMAT in oned: writing %s, the format of %s", c->vp.disk_id,
             c->format, c->src);
    return 0;
}

/* $1 the file written, then the command writing it: flushed when the
 * command succeeds, removed when it fails. */
static const char copy_script[] =
    "p=$1; shift; \"$@\" && sync -- \"$p\" && exit 0; rc=$?; rm -f -- \"$p\"; exit $rc";

static bool is_qcow2(const struct cpds *c)
{
    return streq(c->format, "qcow2");
}

static int copy(struct cpds *c)
{
    _cleanup_free_ char *what = xasprintf("copying %s to %s", c->src, c->part);
    struct strvec args = STRVEC_INIT;
    struct cmd q = CMD_INIT;
    int rc;

    strvec_push(&args, c->part);
    if (is_qcow2(c)) {
        qi_convert(&q, c->src, "qcow2", c->part, "qcow2",
                   (c->sparse ? 0 : QI_PREALLOC) | (c->running ? QI_FORCE_SHARE : 0));
        strvec_pushv(&args, q.args.v);
    } else {
        strvec_pushl(&args, "cp", c->sparse ? "--sparse=always" : "--sparse=never", "--", c->src,
                     c->part, NULL);
    }
    log_info("copying %s (%s) to %s on %s", c->src, c->format, c->dst, host_name(c->h));
    rc = xfer_shv(c->h, what, config_uint("COPY_TIMEOUT"), NULL, copy_script, &args);
    strvec_clear(&args);
    cmd_release(&q);
    return rc;
}

static int check(struct cpds *c)
{
    struct cmd q = CMD_INIT;
    int rc = 0;

    if (!is_qcow2(c))
        return 0; /* a byte copy has no metadata of ours to check */
    qi_check(&q, c->part, "qcow2", 0);
    if (host_run_status(c->h, &q) < 0)
        rc = -1;
    else if (!qi_check_ok(q.status))
        rc = cmd_fail(&q);
    cmd_release(&q);
    return rc < 0 ? fail_context("the copy of %s failed its integrity check", c->src) : 0;
}

static int compare(struct cpds *c)
{
    struct cmd q = CMD_INIT;
    int rc = 0;

    if (is_qcow2(c))
        qi_compare(&q, c->src, "qcow2", c->part, "qcow2", c->running ? QI_FORCE_SHARE : 0);
    else
        strvec_pushl(&q.args, "cmp", "-s", "--", c->src, c->part, NULL);
    q.timeout_s = config_uint("COPY_TIMEOUT");
    if (host_run_status(c->h, &q) < 0)
        rc = -1;
    else if (q.status == 1)
        rc = fail("the copy of %s differs from its source", c->src);
    else if (q.status != 0)
        rc = cmd_fail(&q);
    cmd_release(&q);
    return rc < 0 ? fail_context("cannot verify the copy of %s", c->src) : 0;
}

int cpds_write_part(struct cpds *c, bool verify)
{
    if (copy(c) < 0)
        return -1;
    if (verify && (check(c) < 0 || compare(c) < 0)) {
        xfer_drop(c->h, c->part);
        return -1;
    }
    return 0;
}

static int save(struct cpds *c)
{
    bool same;

    if (prepare(c, &same) < 0)
        return -1;
    if (same) {
        log_info("%s is %s already: nothing to copy", c->src, c->dst);
        return 0;
    }
    if (decide_format(c) < 0 || cpds_write_part(c, config_bool("VERIFY_COPIES")) < 0)
        return -1;
    if (xfer_publish(c->h, c->part, c->dst) < 0) {
        xfer_drop(c->h, c->part);
        return -1;
    }
    log_info("disk %d of VM %d saved as %s", c->vp.disk_id, c->t->vmid, c->dst);
    return 0;
}

static int cpds_run(struct cpds *c, struct action_ctx *ctx)
{
    struct lock lk = LOCK_INIT;
    int rc;

    if (parse_args(c, ctx) < 0 || lock_take_path(&lk, c->target, config_uint("LOCK_TIMEOUT")) < 0)
        return -1;
    rc = read_vm(c);
    if (rc == 0 && !(c->h = tm_host(c->t, c->vp.host)))
        rc = -1;
    if (rc == 0)
        rc = c->hot ? hotsave(c) : save(c);
    lock_release(&lk);
    return rc;
}

int tm_cpds(struct action_ctx *ctx)
{
    struct tm t;
    struct cpds c = { .t = &t };
    int rc;

    if (tm_start(&t, ctx) < 0)
        return -1;
    rc = cpds_run(&c, ctx);
    cpds_release(&c);
    tm_end(&t);
    return rc;
}
