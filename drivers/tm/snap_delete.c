/*
 * snap_delete     HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID
 * snap_delete.ssh HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID
 *
 * Deletes disk snapshot SNAP_ID (Q) of disk N without breaking its chain
 * (protocol §2.3 snap_delete): VM powered off or suspended (LCM 53, 56),
 * or running (LCM 59 DISK_SNAPSHOT_DELETE). DS_ID is the image's datastore.
 * Reads DISK[DISK_ID=N]/{SOURCE,CLONE,FORMAT,TARGET}, DEPLOY_ID, LCM_STATE
 * and /VM/SNAPSHOTS[DISK_ID=N]/SNAPSHOT[ID=Q]/ACTIVE (stock forgets the
 * DISK_ID filter and reads another disk's snapshot Q, trap 15). Works on
 * HOST in the disk's snapshot directory (snapshot.h; .ssh: the system
 * datastore's disk.N.snap). The file S that holds Q is disk.N.snap/Q, or
 * the one Q.current names. Stock's qcow2/snap_delete, in C:
 *  - S used by no other file (a leaf): S goes.
 *  - S the backing file of exactly one file C, VM not running, or running
 *    but S not in the domain's backing chain (`virsh dumpxml`): C is
 *    rebased onto S's backing file (qemu-img rebase in safe mode: C takes
 *    the data of S it relied on), then S goes. This covers the active
 *    snapshot (C is the current file) and the middle of the chain. Unlike
 *    stock, which writes the absolute path of the new backing file, C gets
 *    S's own backing name, so the chain keeps its relative names.
 *  - VM running and S in its chain: S right under the active layer (the
 *    ACTIVE snapshot): `virsh blockpull --base <S's backing>` merges S into
 *    the active layer, then S goes. Deeper: `virsh blockcommit --top C
 *    --base S` merges the layer above S into S; S then holds the snapshot C
 *    held, so C.current (or the .current that named C) names S, and C goes.
 *    Layers are named by libvirt's index ("vda[2]"). The layer above gets
 *    the absolute name of its new backing file, as with stock (libvirt's
 *    --keep-relative would stack one "disk.N.snap/" per job). Every virsh
 *    call is bounded (timeout on the host, --timeout for the block job).
 *  - raw: disk.N.snap/Q (SOURCE.snap/Q) goes.
 * Commands on HOST: two offline (read the directory, one batch); live, also
 * the domain's definition and the block job.
 *
 * Re-run: a snapshot already gone is success; a rebase done but S still
 * there finds S a leaf and removes it; a live commit notes what it is doing
 * in <snap dir>/.qcow2c-commit-Q first, so a re-run after the job finished
 * only writes the .current file and removes C, and one before redoes it.
 * Refused: S the current state of the disk, S (or C, live) the backing file
 * of several files (deleting it would break or change them), a file that
 * another .current also names, a VM whose domain has no such disk.
 */
#include "tm_actions.h"

#include "cleanup.h"
#include "config.h"
#include "hostpath.h"
#include "log.h"
#include "num.h"
#include "qemu_img.h"
#include "snapshot.h"

struct del {
    struct snap_disk d;
    int holder;         /* the file that holds Q */
    bool via_current;   /* named by Q.current */
    int lcm;
    bool running;       /* LCM 59: QEMU has the chain open */
    bool active;        /* oned: Q is the ACTIVE snapshot */
};

/* Removes S (and Q.current) in `o`. */
static void drop_holder(struct del *x, struct snap_ops *o)
{
    _cleanup_free_ char *s = snap_path(&x->d, x->holder);
    _cleanup_free_ char *cur = snap_current_path(&x->d, x->d.snap_id);

    _cleanup_free_ char *note = xasprintf("%s/%scommit-%d", x->d.l.snap_dir, SNAP_NOTE_PREFIX,
                                          x->d.snap_id);

    snap_ops_rm(o, s);
    if (x->via_current)
        snap_ops_rm(o, cur);
    if (snap_get_named(&x->d, path_basename(note)))
        snap_ops_rm(o, note);
    snap_ops_sync(o, x->d.l.snap_dir);
}

/* Another snapshot's .current naming file `id` (NULL: none). */
static const struct snap_file *current_naming(const struct snap_disk *d, int id, int except)
{
    _cleanup_free_ char *skip = xasprintf("%d.current", except);

    for (size_t i = 0; i < d->nf; i++) {
        const struct snap_file *f = &d->f[i];
        int n;

        if (f->current && ends_with(f->name, ".current") && !streq(f->name, skip) &&
            parse_id(path_basename(f->current), &n) == 0 && n == id)
            return f;
    }
    return NULL;
}

/* The backing format to give a file rebased onto S's backing file. */
static const char *base_format(const struct snap_disk *d, const struct snap_file *s)
{
    const struct snap_file *b;

    if (s->ii.backing_format)
        return s->ii.backing_format;
    b = snap_get(d, s->backing);
    return b && b->image ? b->ii.format : NULL;
}

static int delete_offline(struct del *x)
{
    struct snap_disk *d = &x->d;
    const struct snap_file *s = snap_get(d, x->holder);
    struct snap_ops o;
    int kids[2], rc;
    size_t n = snap_children(d, x->holder, kids, 2);

    snap_ops_init(&o);
    if (n > 1) {
        rc = fail("snapshot %d of disk.%d (%s/%d) is the backing file of %zu files: deleting it "
                  "would break them",
                  d->snap_id, d->vp.disk_id, d->l.snap_dir, x->holder, n);
        goto out;
    }
    if (n == 1) {
        _cleanup_free_ char *child = snap_path(d, kids[0]);
        const char *fmt = base_format(d, s);
        struct cmd c = CMD_INIT;

        if (s->ii.backing_file && !fmt) {
            rc = fail("cannot tell the format of %s, the backing file of %s/%d",
                      s->ii.backing_file, d->l.snap_dir, x->holder);
            goto out;
        }
        log_info("deleting snapshot %d of disk.%d: %s rebased onto %s", d->snap_id,
                 d->vp.disk_id, child, s->ii.backing_file ? s->ii.backing_file : "nothing");
        qi_rebase(&c, child, s->ii.backing_file ? s->ii.backing_file : "", fmt ? fmt : "", false,
                  x->running ? QI_FORCE_SHARE : 0);
        snap_ops_cmd(&o, &c);
        cmd_release(&c);
    } else {
        log_info("deleting snapshot %d of disk.%d: %s/%d", d->snap_id, d->vp.disk_id,
                 d->l.snap_dir, x->holder);
    }
    drop_holder(x, &o);
    rc = snap_ops_run(d, &o, "deleting the snapshot");
out:
    snap_ops_release(&o);
    return rc;
}

/* ---- the running VM ---- */

static int virsh_job(struct del *x, struct dom_disk *dom, const char *sub, struct strvec *opts)
{
    struct cmd c = CMD_INIT;
    unsigned limit = config_uint("COPY_TIMEOUT");
    int rc;

    virsh_cmd(&c, limit + 60, sub);
    strvec_pushl(&c.args, dom->deploy_id, dom->target, NULL);
    strvec_pushv(&c.args, opts->v);
    strvec_pushl(&c.args, "--wait", "--timeout", NULL);
    strvec_pushf(&c.args, "%u", limit);
    rc = host_run(x->d.h, &c);
    cmd_release(&c);
    return rc;
}

/* S right under the active layer: pull it into the active layer. */
static int live_pull(struct del *x, struct dom_disk *dom, int p)
{
    struct snap_disk *d = &x->d;
    struct strvec opts = STRVEC_INIT;
    struct snap_ops o;
    int kids[2], rc;
    size_t n = snap_children(d, x->holder, kids, 2);

    snap_ops_init(&o);
    if (n > 1 || (n == 1 && kids[0] != dom->layer[0].id)) {
        rc = fail("snapshot %d of disk.%d (%s/%d) is also the backing file of files the VM "
                  "does not use",
                  d->snap_id, d->vp.disk_id, d->l.snap_dir, x->holder);
        goto out;
    }
    if ((size_t)p + 1 < dom->nl) {
        _cleanup_free_ char *base = dom_layer_arg(dom, (size_t)p + 1);

        strvec_pushl(&opts, "--base", base, NULL);
    }
    log_info("deleting snapshot %d of disk.%d: virsh blockpull of %s/%d into the active layer",
             d->snap_id, d->vp.disk_id, d->l.snap_dir, x->holder);
    if (virsh_job(x, dom, "blockpull", &opts) < 0) {
        rc = -1;
        goto out;
    }
    drop_holder(x, &o);
    rc = snap_ops_run(d, &o, "deleting the snapshot");
out:
    strvec_clear(&opts);
    snap_ops_release(&o);
    return rc;
}

/* After a commit of file c into S: the snapshot c held lives in S. */
static void finish_commit(struct del *x, int c, struct snap_ops *o)
{
    struct snap_disk *d = &x->d;
    const struct snap_file *named = current_naming(d, c, d->snap_id);
    _cleanup_free_ char *cpath = snap_path(d, c);
    _cleanup_free_ char *spath = snap_path(d, x->holder);
    _cleanup_free_ char *data = xasprintf("%s\n", spath);
    _cleanup_free_ char *note = xasprintf("%s/%scommit-%d", d->l.snap_dir, SNAP_NOTE_PREFIX,
                                          d->snap_id);
    _cleanup_free_ char *cur = NULL;

    if (named)
        cur = xasprintf("%s/%s", d->l.snap_dir, named->name);
    else
        cur = snap_current_path(d, c);
    snap_ops_put(o, cur, data);
    if (x->via_current) {
        _cleanup_free_ char *qcur = snap_current_path(d, d->snap_id);

        snap_ops_rm(o, qcur);
    }
    snap_ops_rm(o, cpath);
    snap_ops_rm(o, note);
    snap_ops_sync(o, d->l.snap_dir);
}

/* S deeper in the chain: commit the layer above it into it. */
static int live_commit(struct del *x, struct dom_disk *dom, int p)
{
    struct snap_disk *d = &x->d;
    const struct dom_layer *cl = &dom->layer[p - 1], *ul = &dom->layer[p - 2];
    struct strvec opts = STRVEC_INIT;
    struct snap_ops pre, o;
    int kids[2], rc = -1;
    _cleanup_free_ char *top = dom_layer_arg(dom, (size_t)p - 1);
    _cleanup_free_ char *base = dom_layer_arg(dom, (size_t)p);
    _cleanup_free_ char *note = xasprintf("%s/%scommit-%d", d->l.snap_dir, SNAP_NOTE_PREFIX,
                                          d->snap_id);
    _cleanup_free_ char *text = xasprintf("%d %d\n", cl->id, x->holder);

    snap_ops_init(&pre);
    snap_ops_init(&o);
    if (cl->id < 0 || ul->id < 0) {
        fail("the chain of disk %s of domain %s has layers outside %s", dom->target,
             dom->deploy_id, d->l.snap_dir);
        goto out;
    }
    if (snap_children(d, x->holder, kids, 2) != 1 || snap_children(d, cl->id, kids, 2) != 1 ||
        kids[0] != ul->id) {
        fail("snapshot %d of disk.%d (%s/%d) or the layer above it is also the backing file of "
             "files the VM does not use",
             d->snap_id, d->vp.disk_id, d->l.snap_dir, x->holder);
        goto out;
    }
    if (current_naming(d, x->holder, d->snap_id)) {
        fail("%s/%d also holds another snapshot", d->l.snap_dir, x->holder);
        goto out;
    }
    log_info("deleting snapshot %d of disk.%d: virsh blockcommit of %s/%d into %s/%d",
             d->snap_id, d->vp.disk_id, d->l.snap_dir, cl->id, d->l.snap_dir, x->holder);
    snap_ops_put(&pre, note, text);
    if (snap_ops_run(d, &pre, "noting the commit") < 0)
        goto out;
    strvec_pushl(&opts, "--top", top, "--base", base, NULL);
    if (virsh_job(x, dom, "blockcommit", &opts) < 0)
        goto out;
    finish_commit(x, cl->id, &o);
    rc = snap_ops_run(d, &o, "deleting the snapshot");
out:
    strvec_clear(&opts);
    snap_ops_release(&pre);
    snap_ops_release(&o);
    return rc;
}

/* A commit noted by an earlier run: finished when its layer has left the
 * domain's chain. 1: handled, 0: nothing noted or the job to be redone. */
static int live_resume(struct del *x, struct dom_disk *dom, int *handled)
{
    struct snap_disk *d = &x->d;
    _cleanup_free_ char *name = xasprintf("%scommit-%d", SNAP_NOTE_PREFIX, d->snap_id);
    const struct snap_file *n = snap_get_named(d, name);
    struct snap_ops o;
    int c, s, rc;

    *handled = 0;
    if (!n || !n->current || sscanf(n->current, "%d %d", &c, &s) != 2 || s != x->holder)
        return 0;
    if (dom_find(dom, c) >= 0)
        return 0; /* the layer is still there: commit again */
    log_info("the commit of %s/%d into %s/%d had finished: completing the deletion",
             d->l.snap_dir, c, d->l.snap_dir, s);
    snap_ops_init(&o);
    finish_commit(x, c, &o);
    rc = snap_ops_run(d, &o, "deleting the snapshot");
    snap_ops_release(&o);
    *handled = 1;
    return rc;
}

static int delete_live(struct del *x, int *done)
{
    struct snap_disk *d = &x->d;
    struct dom_disk dom;
    _cleanup_free_ char *deploy = NULL, *target = NULL;
    int p, handled, rc;

    *done = 0;
    deploy = xml_get(tm_vm(d->t), "/VM/DEPLOY_ID");
    if (tm_disk_attr(d->t, d->vp.disk_id, "TARGET", &target) < 0)
        return -1;
    if (check_deploy_id(deploy) < 0)
        return -1;
    if (str_empty(target))
        return fail("disk %d of VM %d has no TARGET", d->vp.disk_id, d->t->vmid);
    if (dom_read(d, deploy, target, &dom) < 0)
        return -1;
    rc = live_resume(x, &dom, &handled);
    if (rc < 0 || handled) {
        *done = 1;
        goto out;
    }
    /* Which files the VM uses must be certain: its layers are files of the
     * snapshot directory, but for the image at the bottom. */
    for (size_t i = 0; i < dom.nl; i++)
        if (dom.layer[i].id < 0 && (i == 0 || (i + 1 < dom.nl && dom.layer[i + 1].id >= 0))) {
            rc = fail("domain %s uses %s for disk %s, which is not a file of %s", deploy,
                      dom.layer[i].path, target, d->l.snap_dir);
            *done = 1;
            goto out;
        }
    p = dom_find(&dom, x->holder);
    if (p < 0) {
        int kids[4];
        size_t n = snap_children(d, x->holder, kids, ARRAY_SIZE(kids));

        for (size_t i = 0; i < n && i < ARRAY_SIZE(kids); i++)
            if (dom_find(&dom, kids[i]) >= 0) {
                rc = fail("%s/%d is used by domain %s through %s/%d but is not in its chain",
                          d->l.snap_dir, x->holder, deploy, d->l.snap_dir, kids[i]);
                *done = 1;
                goto out;
            }
        log_info("snapshot %d of disk.%d is not in the running chain of %s", d->snap_id,
                 d->vp.disk_id, deploy);
        goto out;
    }
    *done = 1;
    if (p == 0)
        rc = fail("snapshot %d of disk.%d (%s/%d) is the disk's current state", d->snap_id,
                  d->vp.disk_id, d->l.snap_dir, x->holder);
    else if (p == 1)
        rc = live_pull(x, &dom, p);
    else
        rc = live_commit(x, &dom, p);
out:
    dom_release(&dom);
    return rc;
}

/* The file Q names is there but is no image (half-made, foreign). */
static int drop_broken(struct del *x)
{
    struct snap_disk *d = &x->d;
    _cleanup_free_ char *p = snap_path(d, d->snap_id);
    int kids[1];

    if (snap_children(d, d->snap_id, kids, 1))
        return fail("%s is not a readable image and other files use it", p);
    log_info("%s is not a readable image: removing it", p);
    return host_runl(d->h, "rm", "-f", "--", p, NULL);
}

static int delete_qcow2(struct del *x)
{
    struct snap_disk *d = &x->d;
    _cleanup_free_ char *active = NULL;
    int top, done;

    if (snap_scan(d) < 0)
        return -1;
    x->holder = snap_holder(d, d->snap_id, &x->via_current);
    if (x->holder < 0) {
        _cleanup_free_ char *cur = snap_current_path(d, d->snap_id);

        if (x->via_current) {
            log_info("snapshot %d of disk.%d is already gone: removing %s", d->snap_id,
                     d->vp.disk_id, cur);
            return host_runl(d->h, "rm", "-f", "--", cur, NULL);
        }
        if (snap_get(d, d->snap_id))
            return drop_broken(x);
        log_info("snapshot %d of disk.%d is already gone", d->snap_id, d->vp.disk_id);
        return 0;
    }
    if (snap_top(d, &top) < 0)
        return -1;
    if (x->holder == top)
        return fail("snapshot %d of disk.%d (%s/%d) is the disk's current state", d->snap_id,
                    d->vp.disk_id, d->l.snap_dir, top);
    if (current_naming(d, x->holder, d->snap_id))
        return fail("%s/%d also holds another snapshot (a .current file names it)",
                    d->l.snap_dir, x->holder);
    if (tm_lcm_state(d->t, &x->lcm) < 0)
        return -1;
    x->running = x->lcm == LCM_DISK_SNAPSHOT_DELETE_RUNNING;
    active = xml_get(tm_vm(d->t), "/VM/SNAPSHOTS[DISK_ID=%d]/SNAPSHOT[ID=%d]/ACTIVE",
                     d->vp.disk_id, d->snap_id);
    x->active = is_yes(active);
    if (x->active) {
        int kids[1];

        if (snap_children(d, x->holder, kids, 1) != 1 || kids[0] != top)
            log_warn("oned says snapshot %d is the active one, but %s/%d is not the "
                     "backing file of the current state",
                     d->snap_id, d->l.snap_dir, x->holder);
    }
    if (x->running) {
        if (delete_live(x, &done) < 0)
            return -1;
        if (done)
            return 0;
    }
    return delete_offline(x);
}

static int delete_copy(struct del *x)
{
    _cleanup_free_ char *p = snap_path(&x->d, x->d.snap_id);

    log_info("deleting snapshot %d of disk.%d: %s", x->d.snap_id, x->d.vp.disk_id, p);
    return host_runl(x->d.h, "rm", "-f", "--", p, NULL);
}

int tm_snap_delete(struct action_ctx *ctx)
{
    struct tm t;
    struct del x = { 0 };
    int rc;

    if (tm_start(&t, ctx) < 0)
        return -1;
    rc = snap_open(&x.d, &t, ctx);
    if (rc == 0)
        rc = x.d.qcow2 ? delete_qcow2(&x) : delete_copy(&x);
    snap_close(&x.d);
    tm_end(&t);
    return rc;
}
