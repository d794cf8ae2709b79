/*
 * deferred.c - a deferred disk save, carried out in the epilog (issue 5;
 * the request: common/dsave.h, recorded by onesnap).
 *
 * For disk N of the VM, when its USER_TEMPLATE holds a pending request:
 *  1. the request is marked SAVING with the kind of shutdown (graceful:
 *     last history ACTION terminate; hard: terminate --hard, recover
 *     --delete; a retry keeps what the first attempt recorded). A hard one
 *     with DEFERRED_SAVE_ON_HARD_TERMINATE=no is marked SKIPPED instead,
 *     and the disk goes;
 *  2. the new image's SOURCE is <BASE_PATH of the request's datastore>/
 *     qcow2c-saved-<vm>-<disk>-<requested>: a deterministic name, so a
 *     re-run finds its own image in the image pool (then only the steps
 *     after the registration are redone) or its own complete file (then
 *     registered without copying again);
 *  3. on the host holding disk N (in ssh mode its local system datastore;
 *     the front-end when the disk is there instead, trap 18), which sees
 *     the image datastore as OpenNebula's qcow2 driver assumes: qemu-img
 *     convert -O qcow2 of the whole chain (standalone, holes kept) into
 *     <final>.part.<pid>, flushed, qemu-img check, qemu-img compare with the
 *     chain, renamed into place (fsync of the directory); leftovers of
 *     killed runs (.part.*) go first;
 *  4. one.image.allocate with the driver's (oneadmin's) credentials: NAME,
 *     TYPE, SOURCE, FORMAT=qcow2, SIZE (the virtual size measured, MB,
 *     rounded up), PERSISTENT; one.image.chown to the VM's owner and group
 *     (quotas are theirs); one.image.update append=1 with where it came
 *     from (QCOW2C_SAVED_VM_ID, _DISK_ID, _AT, QCOW2C_SHUTDOWN,
 *     QCOW2C_CONSISTENCY);
 *  5. the request becomes STATE=SAVED, IMAGE_ID, SAVED.
 * Any failure fails the action with one line and leaves the disk in place;
 * onevm recover --retry resumes. A VM oned does not know (NO_EXISTS) has no
 * request; any other failure to read the VM fails: a pending request cannot
 * be ruled out.
 */
#include "deferred.h"

#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "dsave.h"
#include "hostpath.h"
#include "log.h"
#include "num.h"
#include "qemu_img.h"
#include "transfer.h"

struct dsv {
    struct tm *t;
    const struct vm_path *vp;
    struct dsave_req req;
    struct host *h;
    char *format; /* the disk's FORMAT (DRIVER) */
    char *source; /* SOURCE of the new image, as oned stores it */
    char *dst;    /* the same, as the host sees it */
    char *part;
    char *src; /* the disk's active file, resolved on the host */
    long long uid, gid;
    uint64_t size_mb;
    int image_id;
};

static void dsv_release(struct dsv *d)
{
    dsave_release(&d->req);
    free(d->format);
    free(d->source);
    free(d->dst);
    free(d->part);
    free(d->src);
}

static int mark(struct dsv *d)
{
    _cleanup_free_ char *tmpl = dsave_template(&d->req);

    if (one_vm_update(d->t->one, d->t->vmid, tmpl, 1) < 0)
        return fail_context("cannot record the state of the deferred save of disk %d",
                            d->vp->disk_id);
    return 0;
}

/* ---- the image datastore ---- */

static int target(struct dsv *d)
{
    _cleanup_free_ char *doc = NULL, *base = NULL, *file = NULL;
    struct xml *ds;
    long long type = -1;
    size_t len;

    if (one_datastore_info(d->t->one, d->req.ds_id, &doc) < 0)
        return -1;
    ds = xml_doc_parse(doc, strlen(doc), "DATASTORE");
    if (!ds)
        return fail_context("oned's document for datastore %d", d->req.ds_id);
    base = xml_get(ds, "/DATASTORE/BASE_PATH");
    if (xml_get_int(ds, &type, "/DATASTORE/TYPE") < 0)
        fail_reset();
    xml_free(ds);
    if (type != 0)
        return fail("datastore %d is not an image datastore", d->req.ds_id);
    if (str_empty(base) || base[0] != '/')
        return fail("datastore %d has no BASE_PATH", d->req.ds_id);
    /* BASE_PATH as oned spells it ("//" kept): DS rm compares literally */
    len = strlen(base);
    while (len > 1 && base[len - 1] == '/')
        base[--len] = '\0';
    file = dsave_file_name(d->t->vmid, d->vp->disk_id, d->req.requested);
    d->source = xasprintf("%s/%s", base, file);
    d->dst = image_path_on_host(d->vp, d->source);
    d->part = xasprintf("%s.part.%ld", d->dst, (long)getpid());
    return 0;
}

/* The image registered with our SOURCE by an earlier run, or -1. */
static int find_image(struct dsv *d, int *id)
{
    _cleanup_free_ char *doc = NULL, *want = path_normalize(d->source);
    struct xml *pool;
    int n;

    *id = -1;
    if (one_imagepool_info(d->t->one, -2, -1, -1, &doc) < 0)
        return -1;
    pool = xml_doc_parse(doc, strlen(doc), "IMAGE_POOL");
    if (!pool)
        return fail_context("oned's image pool");
    n = xml_count(pool, "/IMAGE_POOL/IMAGE");
    for (int i = 1; i <= n && *id < 0; i++) {
        _cleanup_free_ char *src = xml_get(pool, "/IMAGE_POOL/IMAGE[%d]/SOURCE", i);
        _cleanup_free_ char *norm = NULL;
        long long v;

        if (str_empty(src))
            continue;
        norm = path_normalize(src);
        if (streq(norm, want) && xml_get_int(pool, &v, "/IMAGE_POOL/IMAGE[%d]/ID", i) == 0)
            *id = (int)v;
    }
    xml_free(pool);
    return 0;
}

/* ---- the copy ---- */

/* $1 disk.N, $2 the final file: removes what killed runs left ($2.part.*),
 * prints the disk's state ("disk" and its resolved path, "dangling",
 * "none") and whether the final file exists ("final", "nofinal"). */
static const char examine_script[] =
    "d=$1 f=$2; rm -f -- \"$f\".part.* || exit 1; "
    "if [ -e \"$d\" ]; then r=$(readlink -f -- \"$d\") || exit 1; printf 'disk\\0%s\\0' \"$r\"; "
    "elif [ -L \"$d\" ]; then printf 'dangling\\0\\0'; else printf 'none\\0\\0'; fi; "
    "if [ -f \"$f\" ]; then printf 'final\\0'; else printf 'nofinal\\0'; fi";

static int examine(struct dsv *d, bool *have_disk, bool *have_final)
{
    _cleanup_free_ char *what = xasprintf("examining %s", d->vp->path);
    struct sbuf out = SBUF_INIT;
    struct strvec r = STRVEC_INIT;
    int rc;

    rc = xfer_sh(d->h, what, 0, &out, examine_script, d->vp->path, d->dst, NULL);
    xfer_split0(&out, &r);
    if (rc == 0 && r.nr != 3)
        rc = fail("unexpected answer from %s while %s", host_name(d->h), what);
    if (rc == 0) {
        *have_disk = streq(r.v[0], "disk");
        *have_final = streq(r.v[2], "final");
        free(d->src);
        d->src = *have_disk ? xstrdup(r.v[1]) : NULL;
    }
    strvec_clear(&r);
    sbuf_release(&out);
    return rc;
}

/* $1 the file written, then the command writing it: flushed when the
 * command succeeds, removed when it fails. */
static const char copy_script[] =
    "p=$1; shift; \"$@\" && sync -- \"$p\" && exit 0; rc=$?; rm -f -- \"$p\"; exit $rc";

static int copy(struct dsv *d)
{
    _cleanup_free_ char *what = xasprintf("copying %s to %s", d->src, d->part);
    struct strvec args = STRVEC_INIT;
    struct cmd q = CMD_INIT;
    int rc;

    strvec_push(&args, d->part);
    qi_convert(&q, d->src, d->format, d->part, "qcow2", 0);
    strvec_pushv(&args, q.args.v);
    log_info("saving disk %d (%s) as %s on %s", d->vp->disk_id, d->src, d->dst, host_name(d->h));
    rc = xfer_shv(d->h, what, config_uint("COPY_TIMEOUT"), NULL, copy_script, &args);
    strvec_clear(&args);
    cmd_release(&q);
    return rc;
}

static int verify(struct dsv *d)
{
    struct cmd q = CMD_INIT;
    int rc = 0;

    qi_check(&q, d->part, "qcow2", 0);
    if (host_run_status(d->h, &q) < 0)
        rc = -1;
    else if (!qi_check_ok(q.status))
        rc = cmd_fail(&q);
    cmd_release(&q);
    if (rc < 0)
        return fail_context("the copy of disk %d failed its integrity check", d->vp->disk_id);
    q = (struct cmd)CMD_INIT;
    qi_compare(&q, d->src, d->format, d->part, "qcow2", 0);
    q.timeout_s = config_uint("COPY_TIMEOUT");
    if (host_run_status(d->h, &q) < 0)
        rc = -1;
    else if (q.status == 1)
        rc = fail("the copy of disk %d differs from the disk", d->vp->disk_id);
    else if (q.status != 0)
        rc = cmd_fail(&q);
    cmd_release(&q);
    return rc < 0 ? fail_context("cannot verify the copy of disk %d", d->vp->disk_id) : 0;
}

static int measure(struct dsv *d)
{
    _cleanup_free_ char *fmt = NULL;
    struct cmd q = CMD_INIT;
    uint64_t vsize = 0;
    int rc;

    qi_info(&q, d->dst, 0);
    rc = host_run(d->h, &q);
    if (rc == 0 && qi_parse_info(q.out.buf ? q.out.buf : "", &fmt, &vsize) < 0)
        rc = fail_context("cannot read the size of %s", d->dst);
    cmd_release(&q);
    if (rc == 0 && (!fmt || !streq(fmt, "qcow2")))
        rc = fail("%s on %s is not a qcow2 file", d->dst, host_name(d->h));
    d->size_mb = (vsize + (1 << 20) - 1) >> 20;
    return rc;
}

/* The disk lives on the front-end, not on the host oned names (recover
 * --retry of the terminate of an undeployed VM names its last host, trap
 * 18). */
static bool on_frontend_instead(struct dsv *d)
{
    struct stat st;

    if (host_is_local(d->h) || lstat(d->vp->path, &st) < 0)
        return false;
    log_info("disk.%d is not on %s but on the front-end: saving it from there", d->vp->disk_id,
             host_name(d->h));
    d->h = tm_host(d->t, "localhost");
    return d->h != NULL;
}

static int make_file(struct dsv *d)
{
    bool have_disk = false, have_final = false;

    if (examine(d, &have_disk, &have_final) < 0)
        return -1;
    if (!have_disk && !have_final && on_frontend_instead(d) &&
        examine(d, &have_disk, &have_final) < 0)
        return -1;
    if (have_final) {
        /* renamed into place only after check and compare passed */
        log_info("the copy of disk %d is in place already (%s): registering it", d->vp->disk_id,
                 d->dst);
        return 0;
    }
    if (!have_disk)
        return fail("disk.%d of VM %d is missing on %s: the deferred save '%s' cannot be "
                    "made (withdraw it with onesnap cancel %d %d to let the VM go)",
                    d->vp->disk_id, d->t->vmid, host_name(d->h), d->req.name, d->t->vmid,
                    d->vp->disk_id);
    if (copy(d) < 0)
        return -1;
    if (verify(d) < 0 || xfer_publish(d->h, d->part, d->dst) < 0) {
        xfer_drop(d->h, d->part);
        return -1;
    }
    return 0;
}

/* ---- registration ---- */

/* A request without TYPE: the type of the disk's image, as oned's
 * disk-saveas with an empty type; DATABLOCK when it is gone. */
static int decide_type(struct dsv *d)
{
    _cleanup_free_ char *id_s = NULL, *doc = NULL;
    struct xml *img = NULL;
    const char *name = NULL;
    long long type = -1;
    int id;

    if (!str_empty(d->req.type))
        return 0;
    if (tm_disk_attr(d->t, d->vp->disk_id, "IMAGE_ID", &id_s) < 0)
        return -1;
    if (!str_empty(id_s) && parse_id(id_s, &id) == 0 && one_image_info(d->t->one, id, &doc) == 0)
        img = xml_doc_parse(doc, strlen(doc), "IMAGE");
    if (img && xml_get_int(img, &type, "/IMAGE/TYPE") == 0)
        name = dsave_type_name(type);
    xml_free(img);
    if (!name) {
        log_warn("the type of the image of disk %d cannot be read (%s): saving it as DATABLOCK",
                 d->vp->disk_id, failed() ? fail_reason() : "not OS, CDROM or DATABLOCK");
        fail_reset();
        name = "DATABLOCK";
    }
    free(d->req.type);
    d->req.type = xstrdup(name);
    return 0;
}

static int allocate(struct dsv *d)
{
    _cleanup_free_ char *tmpl = NULL;
    struct xml_tmpl x;

    xml_tmpl_begin(&x, "TEMPLATE");
    xml_tmpl_add(&x, "NAME", d->req.name);
    xml_tmpl_add(&x, "TYPE", d->req.type);
    xml_tmpl_add(&x, "SOURCE", d->source);
    xml_tmpl_add(&x, "FORMAT", "qcow2");
    xml_tmpl_addf(&x, "SIZE", "%" PRIu64, d->size_mb ? d->size_mb : 1);
    xml_tmpl_add(&x, "PERSISTENT", d->req.persistent ? "YES" : "NO");
    tmpl = xml_tmpl_end(&x);
    if (one_image_allocate(d->t->one, tmpl, d->req.ds_id, false, &d->image_id) < 0)
        return fail_context("the copy of disk %d is at %s but cannot be registered", d->vp->disk_id,
                            d->source);
    log_info("disk %d of VM %d registered as image %d '%s'", d->vp->disk_id, d->t->vmid,
             d->image_id, d->req.name);
    return 0;
}

static int give_and_describe(struct dsv *d)
{
    _cleanup_free_ char *tmpl = NULL;
    bool hard = d->req.shutdown != DSAVE_GRACEFUL;
    struct xml_tmpl x;

    if (one_image_chown(d->t->one, d->image_id, (int)d->uid, (int)d->gid) < 0)
        return fail_context("image %d (the deferred save of disk %d) cannot be given to user "
                            "%lld",
                            d->image_id, d->vp->disk_id, d->uid);
    xml_tmpl_begin(&x, "TEMPLATE");
    xml_tmpl_addf(&x, "QCOW2C_SAVED_VM_ID", "%d", d->t->vmid);
    xml_tmpl_addf(&x, "QCOW2C_SAVED_DISK_ID", "%d", d->vp->disk_id);
    xml_tmpl_addf(&x, "QCOW2C_SAVED_AT", "%lld", dsave_now());
    xml_tmpl_addf(&x, "QCOW2C_REQUESTED", "%lld", d->req.requested);
    xml_tmpl_add(&x, "QCOW2C_SHUTDOWN", dsave_shutdown_str(d->req.shutdown));
    xml_tmpl_add(&x, "QCOW2C_CONSISTENCY", hard ? "crash-consistent" : "clean shutdown");
    tmpl = xml_tmpl_end(&x);
    if (one_image_update(d->t->one, d->image_id, tmpl, 1) < 0)
        return fail_context("cannot record the origin of image %d", d->image_id);
    return 0;
}

static int save(struct dsv *d)
{
    const struct xml *vm = d->t->vm;
    _cleanup_free_ char *fmt = NULL;

    if (xml_get_int(vm, &d->uid, "/VM/UID") < 0 || xml_get_int(vm, &d->gid, "/VM/GID") < 0)
        return fail_context("oned's document for VM %d", d->t->vmid);
    if (tm_disk_attr(d->t, d->vp->disk_id, "FORMAT", &fmt) < 0)
        return -1;
    if (str_empty(fmt)) {
        free(fmt);
        if (tm_disk_attr(d->t, d->vp->disk_id, "DRIVER", &fmt) < 0)
            return -1;
    }
    d->format = xstrdup(str_empty(fmt) ? "qcow2" : fmt);
    if (target(d) < 0 || find_image(d, &d->image_id) < 0)
        return -1;
    d->h = tm_host(d->t, d->vp->host);
    if (!d->h)
        return -1;
    if (d->image_id >= 0) {
        log_info("disk %d was registered as image %d already", d->vp->disk_id, d->image_id);
    } else if (make_file(d) < 0 || measure(d) < 0 || decide_type(d) < 0 || allocate(d) < 0) {
        return -1;
    }
    if (give_and_describe(d) < 0)
        return -1;
    d->req.state = DSAVE_SAVED;
    d->req.image_id = d->image_id;
    d->req.saved = dsave_now();
    return mark(d);
}

/* Steps 1: SAVING, SKIPPED or nothing to do (1: done). */
static int begin(struct dsv *d)
{
    enum dsave_shutdown how = d->req.shutdown;

    if (d->req.state == DSAVE_PENDING)
        how = dsave_shutdown_of(d->t->vm);
    if (how != DSAVE_GRACEFUL && !config_bool("DEFERRED_SAVE_ON_HARD_TERMINATE")) {
        log_warn("VM %d was not shut down gracefully: the deferred save '%s' of disk %d is "
                 "skipped (DEFERRED_SAVE_ON_HARD_TERMINATE=no)",
                 d->t->vmid, d->req.name, d->vp->disk_id);
        d->req.state = DSAVE_SKIPPED;
        d->req.reason = xstrdup("not shut down gracefully; DEFERRED_SAVE_ON_HARD_TERMINATE=no");
        return mark(d) < 0 ? -1 : 1;
    }
    if (d->req.state == DSAVE_PENDING) {
        d->req.state = DSAVE_SAVING;
        d->req.shutdown = how;
        if (mark(d) < 0)
            return -1;
    }
    if (how != DSAVE_GRACEFUL)
        log_info("VM %d was not shut down gracefully (%s): the copy of disk %d is "
                 "crash-consistent",
                 d->t->vmid, dsave_shutdown_str(how), d->vp->disk_id);
    return 0;
}

int deferred_save(struct tm *t, const struct vm_path *vp)
{
    struct dsv d = { .t = t, .vp = vp, .image_id = -1 };
    int rc;

    if (!tm_vm(t)) {
        if (t->one && one_last_code(t->one) == ONE_NO_EXISTS) {
            fail_reset();
            log_info("oned does not know VM %d: no deferred save to make", t->vmid);
            return 0;
        }
        return fail_context("cannot tell whether disk %d has a deferred save pending; the "
                            "disk is kept",
                            vp->disk_id);
    }
    if (dsave_read(t->vm, vp->disk_id, &d.req) < 0)
        return fail_context("disk %d is kept", vp->disk_id);
    if (!dsave_is_pending(&d.req)) {
        dsave_release(&d.req);
        return 0;
    }
    log_info("disk %d has a deferred save pending: '%s' into datastore %d", vp->disk_id, d.req.name,
             d.req.ds_id);
    rc = begin(&d);
    if (rc == 0)
        rc = save(&d);
    if (rc < 0)
        fail_context("deferred save of disk %d as '%s' (the disk is kept)", vp->disk_id,
                     d.req.name);
    dsv_release(&d);
    return rc < 0 ? -1 : 0;
}
