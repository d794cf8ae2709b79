/*
 * snap_create     HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID
 * snap_create.ssh HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID
 *
 * Disk snapshot SNAP_ID (Q) of a VM that is not running (LCM 51
 * DISK_SNAPSHOT_POWEROFF, 54 DISK_SNAPSHOT_SUSPENDED; protocol §2.3
 * snap_create). DS_ID is the image's datastore. Reads
 * DISK[DISK_ID=N]/{SOURCE,CLONE,FORMAT} from oned; all the work is on HOST,
 * in the disk's snapshot directory (snapshot.h): disk.N.snap with relative
 * names when CLONE=YES or for .ssh, SOURCE.snap with absolute names for a
 * persistent disk in shared mode.
 *  - qcow2: file Q freezes: disk.N.snap/Q+1 becomes an empty overlay on the
 *    current file (backing name as the chain spells it, as stock's
 *    `readlink disk.N`), built beside and renamed, and disk.N is switched to
 *    it by rename. Like stock, byte for byte in names and links.
 *  - other formats (raw): disk.N.snap/Q is a full copy of the disk (of
 *    SOURCE for a persistent disk in shared mode), through Q.part.
 * Two commands on HOST (one read of the snapshot directory, one batch).
 *
 * Re-run: stock refuses when Q+1 exists, so a retry fails forever
 * (OpenNebula issue #4653). Here: a file Q+1 that is a complete overlay on
 * the current file is taken as is and disk.N (re)pointed; disk.N already on
 * Q+1 (an overlay on the file of Q, holding no data of its own) is success;
 * a half-made Q+1 (unreadable header) is rebuilt; a raw copy with the
 * disk's time and size is kept. Beyond stock: when oned skipped ids (its ids
 * grow past failed attempts, so file Q does not exist and stock's later
 * revert or save-as of Q fail), Q.current names the file that holds
 * snapshot Q, as a live delete does.
 * Refused: a disk.N that is not a link into its snapshot directory, a
 * chain that is not linear above the current file, a current file newer
 * than Q+1, a complete Q+1 that is not an overlay on the current file or
 * that holds data (a stale snapshot of an earlier life of the image, not
 * this one: taking it would record wrong content), a disk without FORMAT.
 */
#include "tm_actions.h"

#include "cleanup.h"
#include "log.h"
#include "snapshot.h"

static int create_qcow2(struct snap_disk *d)
{
    struct snap_ops prep, fin;
    int top, rc = -1;
    bool taken;

    snap_ops_init(&prep);
    snap_ops_init(&fin);
    if (snap_scan(d) < 0 || snap_top(d, &top) < 0 ||
        snap_plan_create(d, top, &prep, &fin, &taken) < 0)
        goto out;
    if (taken) {
        bool data;

        /* Only this snapshot's own earlier run leaves Q+1 empty on top: the
         * VM is off. Data there are writes made after file Q froze. */
        if (snap_has_data(d, top, &data) < 0)
            goto out;
        if (data) {
            fail("disk.%d is already on %s/%d, which holds data written after %s/%d froze: "
                 "it is not snapshot %d being retried",
                 d->vp.disk_id, d->l.snap_dir, top, d->l.snap_dir, d->snap_id, d->snap_id);
            goto out;
        }
        log_info("snapshot %d of disk.%d was already taken", d->snap_id, d->vp.disk_id);
    } else {
        log_info("snapshot %d of disk.%d: %s/%d on %s/%d", d->snap_id, d->vp.disk_id,
                 d->l.snap_dir, d->snap_id + 1, d->l.snap_dir, top);
    }
    strvec_pushv(&prep.ops, fin.ops.v);
    rc = snap_ops_run(d, &prep, "creating the snapshot");
out:
    snap_ops_release(&prep);
    snap_ops_release(&fin);
    return rc;
}

static int create_copy(struct snap_disk *d)
{
    _cleanup_free_ char *dst = snap_path(d, d->snap_id);
    bool kept;

    log_info("snapshot %d of disk.%d: a copy of %s in %s", d->snap_id, d->vp.disk_id, d->l.disk,
             dst);
    if (host_mkdir_p(d->h, d->l.snap_dir) < 0 || snap_copy(d, d->l.disk, dst, true, &kept) < 0)
        return -1;
    if (kept)
        log_info("%s is already a complete copy", dst);
    return 0;
}

int tm_snap_create(struct action_ctx *ctx)
{
    struct tm t;
    struct snap_disk d;
    int rc;

    if (tm_start(&t, ctx) < 0)
        return -1;
    rc = snap_open(&d, &t, ctx);
    if (rc == 0)
        rc = d.qcow2 ? create_qcow2(&d) : create_copy(&d);
    snap_close(&d);
    tm_end(&t);
    return rc;
}
