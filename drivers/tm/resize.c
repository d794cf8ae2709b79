/*
 * resize HOST:VM_DIR/disk.N SIZE_MB VM_ID DS_ID
 *
 * Grows disk N of a VM that is not running (protocol §2.3 resize). Reads
 * LCM_STATE and DISK[DISK_ID=N]/{FORMAT,SPARSE} from oned. LCM_STATE 62
 * (DISK_RESIZE of a running VM): nothing, the VMM driver resizes the disk
 * live. Otherwise, on HOST, `qemu-img resize` of the file disk.N points to
 * (the active file of its snapshot chain, or the image of a persistent disk
 * in shared mode), preallocated when SPARSE=NO, in the disk's FORMAT (a raw
 * disk is never probed: its guest may have written any header; stock lets
 * qemu-img guess). In DISK_RESIZE_UNDEPLOYED oned names the VM's last host,
 * but a local system datastore's files were moved to the front-end: when
 * disk.N is not on HOST and is on the front-end, it is resized there.
 *
 * Re-run: a disk that already has SIZE_MB is left alone (qemu-img refuses
 * to preallocate to the current size). Refused: a smaller size (disks are
 * never shrunk; the guest's data beyond it would be lost), a destination
 * other than disk.N of this VM with a host, a size that is not a positive
 * number of MB.
 */
#include "tm_actions.h"

#include "cleanup.h"
#include "log.h"
#include "provision.h"

/* HOST, or the front-end when the disk is only there (see above). */
static struct host *where(struct tm *t, const struct vm_path *vp, int lcm)
{
    struct host *h = tm_host(t, vp->host);
    struct rstat st;
    char kind;

    if (!h || lcm != LCM_DISK_RESIZE_UNDEPLOYED || host_is_local(h))
        return h;
    if (host_stat(h, vp->path, &st) < 0)
        return NULL;
    kind = st.kind;
    rstat_release(&st);
    if (kind != 'N' || access(vp->path, F_OK) != 0)
        return h;
    log_info("disk.%d is not on %s: resizing it on the front-end", vp->disk_id, vp->host);
    return tm_host(t, "localhost");
}

static int resize_run(struct tm *t, struct action_ctx *ctx)
{
    struct vm_path vp;
    _cleanup_free_ char *id = NULL, *sparse = NULL, *format = NULL;
    struct host *h;
    uint64_t mb;
    int ds_id, lcm, rc = -1;

    if (prov_size_mb(ctx->argv[1], "size", &mb) < 0 || prov_ds_id(ctx->argv[3], &ds_id) < 0 ||
        prov_disk_arg(ctx->argv[0], t->vmid, &vp) < 0)
        return -1;
    if (tm_lcm_state(t, &lcm) < 0 || tm_disk_attr(t, vp.disk_id, "DISK_ID", &id) < 0 ||
        tm_disk_attr(t, vp.disk_id, "SPARSE", &sparse) < 0 ||
        tm_disk_attr(t, vp.disk_id, "FORMAT", &format) < 0)
        goto out;
    if (!id) {
        fail("VM %d has no disk %d", t->vmid, vp.disk_id);
        goto out;
    }
    if (lcm == LCM_DISK_RESIZE) {
        log_info("VM %d is running: its hypervisor resizes disk.%d", t->vmid, vp.disk_id);
        rc = 0;
        goto out;
    }
    h = where(t, &vp, lcm);
    if (h)
        rc = prov_grow(h, vp.path, str_empty(format) ? NULL : format, mb, !is_no(sparse), true);
out:
    vm_path_release(&vp);
    return rc;
}

int tm_resize(struct action_ctx *ctx)
{
    struct tm t;
    int rc;

    if (tm_start(&t, ctx) < 0)
        return -1;
    rc = resize_run(&t, ctx);
    tm_end(&t);
    return rc;
}
