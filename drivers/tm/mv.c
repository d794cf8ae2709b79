/*
 * mv     SRC_HOST:PATH DST_HOST:PATH VM_ID DS_ID   shared system datastore
 * mv.ssh SRC_HOST:PATH DST_HOST:PATH VM_ID DS_ID   mixed mode (system TM ssh)
 *
 * oned moves a VM between hosts or system datastores with one line per disk
 * and a last line for the VM directory (stop/undeploy, resume, cold
 * migration; protocol §2.1, §2.3 mv, §3.2). As OpenNebula's qcow2/mv:
 *  - PATH = <vm dir>/disk.N (both sides, the same N): nothing. The disk
 *    moves with its VM directory. The source need not exist (a FILESYSTEM
 *    disk at resume, trap 31; a re-run after the move), and no host is
 *    contacted. Same for mv.ssh, whose directory line goes to the system
 *    datastore's own TM.
 *  - PATH = <vm dir>, the same path on both sides: shared storage, nothing
 *    to move (stop, resume and cold migration on one system datastore).
 *  - PATH = <vm dir>, another path (the VM changes system datastore; DS_ID
 *    is the new one): on DST_HOST, the directory is renamed when both paths
 *    are on one mount; otherwise it is copied beside its new name
 *    (<new>.part, sparse, links kept), flushed, renamed, and only then is
 *    the old directory removed. At every moment one complete copy exists:
 *    the old directory until the new one carries its final name.
 * Re-run: the new directory present means the move was published (only a
 * complete copy is ever renamed to it); a source still there is what an
 * interrupted removal left, and goes once the new directory holds every
 * entry of it. Neither present: nothing to move (success, with a warning).
 * A <new>.part of an interrupted copy is replaced.
 * Refused: paths outside this VM's directory or of another form, a disk
 * line whose two sides name different disks, a directory line whose
 * destination is not in datastore DS_ID, a directory line of mv.ssh.
 * oned is not asked anything.
 */
#include "tm_actions.h"

#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "provision.h"
#include "transfer.h"

/* $1 the VM directory, $2 its new path. Prints what was done. */
static const char move_script[] =
    "s=$1 d=$2 p=$2.part; "
    "if [ -e \"$d\" ] || [ -L \"$d\" ]; then "
    /* published: finish the removal of the old copy, if it is one */
    "  [ -e \"$s\" ] || [ -L \"$s\" ] || { echo done; exit 0; }; "
    "  for f in \"$s\"/* \"$s\"/.[!.]* \"$s\"/..?*; do "
    "    [ -e \"$f\" ] || [ -L \"$f\" ] || continue; "
    "    n=${f##*/}; [ -e \"$d/$n\" ] || [ -L \"$d/$n\" ] || "
    "    { echo \"both $n\"; exit 0; }; done; "
    "  rm -rf -- \"$s\" && echo cleaned; exit; fi; "
    "[ -e \"$s\" ] || [ -L \"$s\" ] || { echo nothing; exit 0; }; "
    "mkdir -p -- \"${d%/*}\" || exit 1; "
    "a=$(stat -c '%d %m' -- \"$s\") && b=$(stat -c '%d %m' -- \"${d%/*}\") || exit 1; "
    "if [ -n \"${a#* }\" ] && [ \"$a\" = \"$b\" ]; then "
    "  mv -T -- \"$s\" \"$d\" && echo renamed; exit; fi; "
    "rm -rf -- \"$p\" && cp -a --sparse=always -- \"$s\" \"$p\" && sync -f -- \"$p\" && "
    "mv -T -- \"$p\" \"$d\" && sync -- \"${d%/*}\" && rm -rf -- \"$s\" && echo copied && exit 0; "
    "rc=$?; rm -rf -- \"$p\"; exit $rc";

static int move_dir(struct tm *t, const struct vm_path *src, const struct vm_path *dst)
{
    _cleanup_free_ char *what = xasprintf("moving %s to %s", src->path, dst->path);
    struct sbuf out = SBUF_INIT;
    struct host *h = tm_host(t, dst->host);
    int rc;

    if (!h)
        return -1;
    log_info("moving the VM directory %s to %s on %s", src->path, dst->path, dst->host);
    rc = xfer_sh(h, what, config_uint("COPY_TIMEOUT"), &out, move_script, src->path, dst->path,
                 NULL);
    sbuf_rtrim(&out);
    if (rc < 0) {
        fail_context("cannot move the directory of VM %d to another system datastore", t->vmid);
    } else if (starts_with(out.buf, "both ")) {
        rc = fail("both %s and %s exist on %s and '%s' is only in the first: refusing to "
                  "choose between them",
                  src->path, dst->path, dst->host, out.buf + 5);
    } else if (streq(out.buf, "nothing")) {
        log_warn("neither %s nor %s exists on %s: nothing to move", src->path, dst->path,
                 dst->host);
    } else if (streq(out.buf, "done")) {
        log_info("%s is already in place", dst->path);
    } else if (streq(out.buf, "cleaned")) {
        log_info("%s was already in place; removed the old copy %s", dst->path, src->path);
    }
    sbuf_release(&out);
    return rc;
}

static int mv_run(struct tm *t, struct action_ctx *ctx)
{
    struct vm_path src = { 0 }, dst = { 0 };
    int ds_id, rc = -1;

    if (prov_ds_id(ctx->argv[3], &ds_id) < 0 ||
        vm_path_parse(ctx->argv[0], t->vmid, "source", &src) < 0 ||
        vm_path_parse(ctx->argv[1], t->vmid, "destination", &dst) < 0)
        goto out;
    if (!src.host || !dst.host || src.kind == VM_PATH_FILE || src.kind != dst.kind) {
        fail("'%s' to '%s' is neither host:<vm dir>/disk.<n> to host:<vm dir>/disk.<n> nor "
             "host:<vm dir> to host:<vm dir> of VM %d",
             ctx->argv[0], ctx->argv[1], t->vmid);
        goto out;
    }
    if (src.kind == VM_PATH_DISK) {
        if (src.disk_id != dst.disk_id) {
            fail("the source is disk.%d but the destination disk.%d", src.disk_id, dst.disk_id);
            goto out;
        }
        log_info("disk.%d moves with its VM directory: nothing to do", src.disk_id);
        rc = 0;
        goto out;
    }
    if (t->ssh_mode) {
        fail("mv.ssh moves no VM directory: that is the job of the system datastore's TM");
        goto out;
    }
    if (dst.sys_ds_id != ds_id) {
        fail("the destination '%s' is not in system datastore %d", ctx->argv[1], ds_id);
        goto out;
    }
    if (streq(src.path, dst.path)) {
        log_info("%s is the same path on %s and %s (shared storage): nothing to move", dst.path,
                 src.host, dst.host);
        rc = 0;
        goto out;
    }
    rc = move_dir(t, &src, &dst);
out:
    vm_path_release(&src);
    vm_path_release(&dst);
    return rc;
}

int tm_mv(struct action_ctx *ctx)
{
    struct tm t;
    int rc;

    if (tm_start(&t, ctx) < 0)
        return -1;
    rc = mv_run(&t, ctx);
    tm_end(&t);
    return rc;
}
