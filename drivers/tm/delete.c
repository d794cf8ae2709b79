/*
 * delete HOST:PATH VM_ID DS_ID
 *
 * Removes a VM's disk or its whole directory on HOST (epilog, detach,
 * recover --delete, cleanups; protocol §2.3 delete, traps 17, 24), as
 * OpenNebula's common/delete: `rm -rf PATH`, retried up to 10 times a
 * second apart (a file system busy for a moment).
 *  - PATH = <vm dir>/disk.N: only disk.N goes, the file or the link. For a
 *    persistent disk that link points into the image datastore and only the
 *    link is removed: DELETE also comes for persistent disks (recover
 *    --delete), so nothing of an image datastore is ever touched. The
 *    disk.N.snap directory goes with the VM directory.
 *  - PATH = <vm dir>: the directory and everything in it; rm does not
 *    follow the links into the image datastore. DS_ID must be the system
 *    datastore of that path.
 * A missing PATH (or a dangling link, removed) is success: a re-run, or a
 * cleanup after a failed prolog, converges. For disk.N oned is asked for
 * the VM first: a deferred save pending for the disk (deferred.h) is made
 * before it goes, and a VM that cannot be read keeps its disk. Refused: a
 * path outside this VM's directory, other names in it, a path without a
 * host, '.'/'..'.
 */
#include "tm_actions.h"

#include "cleanup.h"
#include "deferred.h"
#include "log.h"
#include "provision.h"

static const char delete_script[] = "[ -e \"$1\" ] || [ -L \"$1\" ] || exit 0; n=1; "
                                    "until rm -rf -- \"$1\"; do "
                                    "[ $n -lt 10 ] || exit 1; n=$((n + 1)); sleep 1; done";

static int delete_run(struct tm *t, struct action_ctx *ctx)
{
    struct vm_path vp;
    struct host *h;
    int ds_id, rc = -1;

    if (prov_ds_id(ctx->argv[2], &ds_id) < 0 ||
        vm_path_parse(ctx->argv[0], t->vmid, "path", &vp) < 0)
        return -1;
    if (!vp.host || vp.kind == VM_PATH_FILE) {
        fail("the path '%s' is neither host:<vm dir> nor host:<vm dir>/disk.<n> of VM %d",
             ctx->argv[0], t->vmid);
        goto out;
    }
    if (vp.kind == VM_PATH_DIR && vp.sys_ds_id != ds_id) {
        fail("the VM directory '%s' is not in datastore %d", ctx->argv[0], ds_id);
        goto out;
    }
    /* a deferred save of this disk (issue 5) is made before it goes */
    if (vp.kind == VM_PATH_DISK && deferred_save(t, &vp) < 0)
        goto out;
    h = tm_host(t, vp.host);
    log_info("deleting %s:%s", vp.host, vp.path);
    if (h)
        rc = host_runl(h, "sh", "-c", delete_script, "sh", vp.path, NULL);
out:
    vm_path_release(&vp);
    return rc;
}

int tm_delete(struct action_ctx *ctx)
{
    struct tm t;
    int rc;

    if (tm_start(&t, ctx) < 0)
        return -1;
    rc = delete_run(&t, ctx);
    tm_end(&t);
    return rc;
}
