/*
 * snap_revert     HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID
 * snap_revert.ssh HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID
 *
 * Disk N of a powered-off VM (LCM 52 DISK_SNAPSHOT_REVERT_POWEROFF) goes
 * back to snapshot SNAP_ID (Q) (protocol §2.3 snap_revert). DS_ID is the
 * image's datastore. Reads DISK[DISK_ID=N]/{SOURCE,CLONE,FORMAT}; works on
 * HOST in the disk's snapshot directory (snapshot.h; .ssh: always the
 * system datastore's disk.N.snap).
 *  - qcow2: the current file (the highest, disk.N points to it) becomes an
 *    empty overlay on the file of Q: disk.N.snap/Q, or the file Q.current
 *    names (a live delete moved Q there), with the chain's naming (relative
 *    "disk.N.snap/Q", absolute "SOURCE.snap/Q"). Stock recreates the file in
 *    place (`qemu-img create` over it: a failure leaves no current file);
 *    here it is built beside and renamed over it. Two commands on HOST.
 *  - raw: the snapshot's copy replaces the file disk.N resolves to, through
 *    a copy beside it and a rename. For a persistent disk in shared mode
 *    that is the image itself (disk.N -> SOURCE stays): stock removes the
 *    link and copies the snapshot into the system datastore, so the VM no
 *    longer writes its image and its later changes are lost at terminate
 *    (OpenNebula issue #6663).
 * The current state is discarded: that is what a revert is.
 *
 * Re-run: the new current file is complete or absent (rename), so a re-run
 * simply makes it again. A raw revert always copies: a disk that looks like
 * the snapshot (same size, same time) may still have been written since.
 * Refused: a snapshot that is missing or unreadable (nothing is changed), a
 * current file that is the snapshot itself or that other files use as
 * their backing file, a disk.N that is not a link into its snapshot
 * directory (qcow2).
 */
#include "tm_actions.h"

#include "cleanup.h"
#include "hostpath.h"
#include "log.h"
#include "qemu_img.h"
#include "snapshot.h"

static int revert_qcow2(struct snap_disk *d)
{
    struct snap_ops o;
    struct cmd c = CMD_INIT;
    const struct snap_file *s;
    int top, holder, rc = -1;
    bool via;

    snap_ops_init(&o);
    if (snap_scan(d) < 0)
        goto out;
    holder = snap_holder(d, d->snap_id, &via);
    if (holder < 0) {
        fail("snapshot %d of disk.%d is missing: %s/%d%s is not a readable image", d->snap_id,
             d->vp.disk_id, d->l.snap_dir, d->snap_id, via ? ".current names a file that" : "");
        goto out;
    }
    if (snap_top(d, &top) < 0)
        goto out;
    if (holder == top) {
        fail("snapshot %d of disk.%d is its current file %s/%d", d->snap_id, d->vp.disk_id,
             d->l.snap_dir, top);
        goto out;
    }
    s = snap_get(d, holder);
    {
        _cleanup_free_ char *cur = snap_path(d, top);
        _cleanup_free_ char *part = xasprintf("%s.part", cur);
        _cleanup_free_ char *backing = snap_name(d, holder);
        _cleanup_free_ char *top_name = snap_name(d, top);

        log_info("reverting disk.%d to snapshot %d: %s becomes an overlay on %s", d->vp.disk_id,
                 d->snap_id, cur, backing);
        if (!d->self_link)
            snap_ops_link(&o, ".", d->l.self);
        qi_create_overlay(&c, part, backing, s->ii.format);
        snap_ops_cmd(&o, &c);
        snap_ops_publish(&o, part, cur);
        snap_ops_sync(&o, d->l.snap_dir);
        if (d->link_id != top) {
            snap_ops_link(&o, top_name, d->vp.path);
            snap_ops_sync(&o, d->vp.vm_dir);
        }
    }
    rc = snap_ops_run(d, &o, "reverting the disk");
out:
    cmd_release(&c);
    snap_ops_release(&o);
    return rc;
}

/* The file disk.N resolves to (one level: disk.N itself, or its target). */
static int revert_copy(struct snap_disk *d)
{
    _cleanup_free_ char *snap = snap_path(d, d->snap_id);
    _cleanup_free_ char *dst = NULL;
    struct rstat st;
    bool kept;

    if (host_stat(d->h, snap, &st) < 0)
        return -1;
    if (st.kind != 'F' && st.kind != 'L') {
        rstat_release(&st);
        return fail("snapshot %d of disk.%d is missing (%s)", d->snap_id, d->vp.disk_id, snap);
    }
    rstat_release(&st);
    if (host_stat(d->h, d->vp.path, &st) < 0)
        return -1;
    if (st.kind == 'L')
        dst = st.target[0] == '/' ? path_normalize(st.target) : path_join(d->vp.vm_dir, st.target);
    else
        dst = xstrdup(d->vp.path);
    rstat_release(&st);
    log_info("reverting disk.%d to snapshot %d: %s copied over %s", d->vp.disk_id, d->snap_id,
             snap, dst);
    return snap_copy(d, snap, dst, false, &kept);
}

int tm_snap_revert(struct action_ctx *ctx)
{
    struct tm t;
    struct snap_disk d;
    int rc;

    if (tm_start(&t, ctx) < 0)
        return -1;
    rc = snap_open(&d, &t, ctx);
    if (rc == 0)
        rc = d.qcow2 ? revert_qcow2(&d) : revert_copy(&d);
    snap_close(&d);
    tm_end(&t);
    return rc;
}
