/*
 * snap_create_live     HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID
 * snap_create_live.ssh HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID
 *
 * Disk snapshot SNAP_ID (Q) of a running VM (LCM 57 DISK_SNAPSHOT), run by
 * the VMM driver (one_vmm_exec.rb renames SNAP_CREATE to SNAP_CREATE_LIVE
 * when "kvm-qcow2c" is in LIVE_DISK_SNAPSHOTS; protocol §2.3). DS_ID is the
 * image's datastore. Reads DISK[DISK_ID=N]/{SOURCE,CLONE,FORMAT,TARGET},
 * DEPLOY_ID (the libvirt domain: its UUID under OpenNebula's KVM driver) and
 * the last history record's VM_MAD; works on HOST with virsh (program and
 * URI from qcow2c.conf) in the disk's snapshot directory (snapshot.h).
 *  - qcow2, as stock: the overlay disk.N.snap/Q+1 on the file the domain
 *    writes (built beside and renamed), then `virsh snapshot-create
 *    DEPLOY_ID --disk-only --atomic --no-metadata --reuse-external
 *    --xmlfile F`, F saying snapshot='external' with Q+1 for TARGET and
 *    snapshot='no' for every other disk of the domain (read from the
 *    domain itself), then disk.N -> Q+1 (in the same command, right after
 *    the switch).
 *  - raw: a full copy of the disk to disk.N.snap/Q (SOURCE.snap/Q), made
 *    beside and renamed.
 * Both inside a file-system freeze (`virsh domfsfreeze`); when the guest
 * has no agent (or the freeze fails) the domain is suspended instead. The
 * guest is ALWAYS thawed (resumed) afterwards, also after an error or a
 * freeze that timed out (its agent may still freeze later): stock thaws
 * only after a freeze that answered, and leaves a guest frozen otherwise.
 * Every virsh call is bounded (timeout(1) on the host: 60 s for the agent,
 * suspend and dumpxml, TIMEOUT for snapshot-create, COPY_TIMEOUT for a raw
 * copy). A guest that cannot be thawed is reported as an ERROR line; the
 * action still succeeds when the snapshot was taken (failing would make
 * oned forget a snapshot that exists and whose file the disk now uses).
 * Commands on HOST: read the directory, the domain, make the overlay,
 * freeze, switch and link, thaw: six (seven with suspend after a refused
 * freeze).
 *
 * Re-run: the domain's active layer is the truth. Already on Q+1 (an
 * earlier run switched it but did not link): disk.N is pointed to Q+1, no
 * freeze. A Q+1 left on the active layer by an earlier attempt is reused;
 * other overlays on the active layer (never used by the domain, holding no
 * data) are removed. When the switch fails, the domain is read again: if it
 * did switch, the link is made and the action succeeds; if not, Q+1 is
 * removed. Ids skipped by oned get Q.current (snap_create).
 * Refused: a domain whose active layer is not a file of the snapshot
 * directory or does not descend from disk.N's file, an LXC VM (qcow2), a
 * DEPLOY_ID virsh could take for an option.
 */
#include "tm_actions.h"

#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "snapshot.h"
#include "xml.h"

#define AGENT_LIMIT 60u

enum quiet { QUIET_NONE, QUIET_FROZEN, QUIET_SUSPENDED };

struct live {
    struct snap_disk d;
    char *deploy;
    char *target;
};

/* One virsh call about the domain. The status is the caller's to judge;
 * -1 only when it could not run. A session lost on the way is replaced by
 * a new one (a thaw must get through). */
static int virsh_dom(struct live *v, const char *sub, unsigned limit, struct cmd *c)
{
    struct host *fresh;
    int rc;

    virsh_cmd(c, limit, sub);
    strvec_push(&c->args, v->deploy);
    rc = host_run_status(v->d.h, c);
    if (rc == 0 || (!streq(sub, "domfsthaw") && !streq(sub, "resume")))
        return rc;
    fresh = host_new(host_name(v->d.h));
    if (!fresh)
        return -1;
    log_warn("retrying %s over a new connection to %s", sub, host_name(v->d.h));
    fail_reset();
    sbuf_reset(&c->out);
    sbuf_reset(&c->err);
    rc = host_run_status(fresh, c);
    host_free(fresh);
    return rc;
}

static void err_line(struct cmd *c, struct sbuf *out)
{
    sbuf_reset(out);
    sbuf_rtrim(&c->err);
    sbuf_add_oneline(out, c->err.buf, c->err.len);
    if (!out->len)
        sbuf_addf(out, "exit status %d%s", c->status, c->timed_out ? ", timed out" : "");
}

static bool simple_call(struct live *v, const char *sub, struct sbuf *why)
{
    struct cmd c = CMD_INIT;
    bool ok;

    ok = virsh_dom(v, sub, AGENT_LIMIT, &c) == 0 && c.status == 0;
    if (!ok) {
        if (failed()) {
            sbuf_reset(why);
            sbuf_adds(why, fail_reason());
            fail_reset();
        } else {
            err_line(&c, why);
        }
    }
    cmd_release(&c);
    return ok;
}

/* Freezes the guest's file systems, or suspends the domain. */
static int quiesce(struct live *v, enum quiet *how)
{
    struct sbuf why = SBUF_INIT, why2 = SBUF_INIT;
    int rc = 0;

    *how = QUIET_NONE;
    if (simple_call(v, "domfsfreeze", &why)) {
        *how = QUIET_FROZEN;
        goto out;
    }
    log_info("cannot freeze the file systems of %s (%s): suspending it", v->deploy, why.buf);
    /* An agent that did not answer in time may freeze later: thaw anyway.
     * Only a domain without an agent (no channel, or nobody on it) needs
     * nothing. */
    if (!strstr(why.buf, "not configured") && !strstr(why.buf, "not connected") &&
        !simple_call(v, "domfsthaw", &why2))
        log_warn("thawing %s after the failed freeze: %s", v->deploy, why2.buf);
    if (simple_call(v, "suspend", &why2)) {
        *how = QUIET_SUSPENDED;
        goto out;
    }
    rc = fail("cannot freeze nor suspend domain %s: %s", v->deploy, why2.buf);
out:
    sbuf_release(&why);
    sbuf_release(&why2);
    return rc;
}

/* Thaws or resumes; a guest left frozen is logged, loudly, and retried. */
static void unquiesce(struct live *v, enum quiet how)
{
    const char *sub = how == QUIET_FROZEN ? "domfsthaw" : "resume";
    struct sbuf why = SBUF_INIT;
    _cleanup_free_ char *saved = failed() ? xstrdup(fail_reason()) : NULL;
    bool ok = false;

    if (how == QUIET_NONE)
        return;
    fail_reset();
    for (int i = 0; i < 3 && !ok; i++) {
        ok = simple_call(v, sub, &why);
        if (!ok && i < 2)
            sleep(1);
    }
    if (!ok)
        log_error("domain %s is still %s: %s failed: %s; run 'virsh %s %s' on %s", v->deploy,
                  how == QUIET_FROZEN ? "frozen" : "suspended", sub, why.buf, sub, v->deploy,
                  host_name(v->d.h));
    if (saved)
        fail("%s", saved);
    sbuf_release(&why);
}

/* ---- qcow2 ---- */

static char *snapshot_xml(struct live *v, const struct dom_disk *dom)
{
    struct sbuf x = SBUF_INIT;
    _cleanup_free_ char *file = snap_path(&v->d, v->d.snap_id + 1);

    sbuf_addf(&x, "<domainsnapshot>\n  <name>%d-%d</name>\n  <description>snap %d-%d</description>\n"
                  "  <disks>\n",
              v->d.vp.disk_id, v->d.snap_id, v->d.vp.disk_id, v->d.snap_id);
    for (size_t i = 0; i < dom->targets.nr; i++) {
        sbuf_adds(&x, "    <disk name='");
        xml_escape(&x, dom->targets.v[i]);
        if (streq(dom->targets.v[i], v->target)) {
            sbuf_adds(&x, "' snapshot='external'>\n      <source file='");
            xml_escape(&x, file);
            sbuf_adds(&x, "'/>\n    </disk>\n");
        } else {
            sbuf_adds(&x, "' snapshot='no'/>\n");
        }
    }
    sbuf_adds(&x, "  </disks>\n</domainsnapshot>\n");
    return sbuf_detach(&x);
}

/* $1 the XML, $2 the link target, $3 the link, $4 its directory, then the
 * virsh command. Exit 0: switched and linked; 3: switched, not linked. */
static const char switch_script[] =
    "x=$1 t=$2 l=$3 dir=$4; shift 4; f=$(mktemp) || exit 1; "
    "printf '%s' \"$x\" >\"$f\" || { rm -f -- \"$f\"; exit 1; }; "
    "\"$@\" --xmlfile \"$f\"; rc=$?; rm -f -- \"$f\"; [ $rc = 0 ] || exit $rc; "
    "rm -f -- \"$l.lnk\" && ln -s -- \"$t\" \"$l.lnk\" && mv -fT -- \"$l.lnk\" \"$l\" && "
    "sync -- \"$dir\" || exit 3";

/* 0 switched and linked, 1 switched but not linked, -1 not switched (or
 * unknown: the caller reads the domain again). */
static int switch_disk(struct live *v, const struct dom_disk *dom)
{
    struct snap_disk *d = &v->d;
    struct cmd c = CMD_INIT;
    _cleanup_free_ char *xml = snapshot_xml(v, dom);
    _cleanup_free_ char *name = snap_name(d, d->snap_id + 1);
    unsigned limit = config_uint("TIMEOUT");
    int rc;

    strvec_pushl(&c.args, "sh", "-c", switch_script, "sh", xml, name, d->vp.path, d->vp.vm_dir,
                 NULL);
    virsh_cmd(&c, limit, "snapshot-create");
    strvec_pushl(&c.args, v->deploy, "--disk-only", "--atomic", "--no-metadata",
                 "--reuse-external", NULL);
    c.what = "virsh snapshot-create";
    rc = host_run_status(d->h, &c);
    if (rc == 0 && c.status == 0) {
        rc = 0;
    } else if (rc == 0 && c.status == 3) {
        log_warn("domain %s switched to %s but disk.%d could not be linked to it: %s",
                 v->deploy, name, d->vp.disk_id, c.err.buf);
        rc = 1;
    } else {
        if (rc == 0)
            cmd_fail(&c);
        fail_context("the snapshot of disk %s of domain %s", v->target, v->deploy);
        rc = -1;
    }
    cmd_release(&c);
    return rc;
}

/* The link, after a switch that did not make it. */
static int relink(struct live *v)
{
    struct snap_ops o;
    _cleanup_free_ char *name = snap_name(&v->d, v->d.snap_id + 1);
    int rc;

    snap_ops_init(&o);
    snap_ops_link(&o, name, v->d.vp.path);
    snap_ops_sync(&o, v->d.vp.vm_dir);
    rc = snap_ops_run(&v->d, &o, "linking the disk to its new current file");
    if (rc < 0) {
        struct host *fresh = host_new(host_name(v->d.h));
        struct host *old = v->d.h;

        fail_reset();
        if (!fresh)
            return -1;
        v->d.h = fresh;
        rc = snap_ops_run(&v->d, &o, "linking the disk to its new current file");
        v->d.h = old;
        host_free(fresh);
    }
    snap_ops_release(&o);
    if (rc < 0)
        return fail_context("domain %s writes %s/%d but disk.%d still points to %s: do not "
                            "boot the VM before disk.%d points there",
                            v->deploy, v->d.l.snap_dir, v->d.snap_id + 1, v->d.vp.disk_id,
                            v->d.link_target, v->d.vp.disk_id);
    return 0;
}

/* Whether file `to` descends from file `from` by backing files. */
static bool descends(const struct snap_disk *d, int to, int from)
{
    for (int id = to, n = 0; id >= 0 && n < 10000; n++) {
        const struct snap_file *f = snap_get(d, id);

        if (id == from)
            return true;
        id = f && f->image ? f->backing : -1;
    }
    return false;
}

/* Overlays on the active layer other than Q+1: never used by the domain. */
static int drop_unused(struct live *v, int top, struct snap_ops *o)
{
    struct snap_disk *d = &v->d;
    int kids[16];
    size_t n = snap_children(d, top, kids, ARRAY_SIZE(kids));

    if (n > ARRAY_SIZE(kids))
        return fail("%zu files are overlays on %s/%d", n, d->l.snap_dir, top);
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *p = snap_path(d, kids[i]);
        int sub[1];
        bool data;

        if (kids[i] == d->snap_id + 1)
            continue;
        if (snap_children(d, kids[i], sub, 1))
            return fail("%s, an overlay on the active layer, has overlays itself", p);
        if (snap_has_data(d, kids[i], &data) < 0)
            return -1;
        if (data)
            return fail("%s, an overlay on the active layer the domain does not use, holds "
                        "data",
                        p);
        log_info("removing %s, an overlay the domain never used (an interrupted snapshot)", p);
        snap_ops_rm(o, p);
    }
    return 0;
}

static int live_qcow2(struct live *v)
{
    struct snap_disk *d = &v->d;
    struct dom_disk dom = { 0 };
    struct snap_ops prep, fin;
    enum quiet how = QUIET_NONE;
    int top, sw, rc = -1;
    bool taken;

    snap_ops_init(&prep);
    snap_ops_init(&fin);
    if (snap_scan(d) < 0 || dom_read(d, v->deploy, v->target, &dom) < 0)
        goto out;
    top = dom.layer[0].id;
    if (top < 0) {
        fail("domain %s writes disk %s to %s, not to a file of %s", v->deploy, v->target,
             dom.layer[0].path, d->l.snap_dir);
        goto out;
    }
    if (d->link_kind != 'L' || d->link_id < 0 || !descends(d, top, d->link_id)) {
        fail("domain %s writes disk %s to %s/%d, which does not descend from %s (-> %s)",
             v->deploy, v->target, d->l.snap_dir, top, d->vp.path,
             d->link_target ? d->link_target : "nothing");
        goto out;
    }
    if (top != d->link_id)
        log_info("domain %s writes %s/%d, disk.%d points to %d: it will be linked", v->deploy,
                 d->l.snap_dir, top, d->vp.disk_id, d->link_id);
    if (drop_unused(v, top, &prep) < 0 || snap_plan_create(d, top, &prep, &fin, &taken) < 0)
        goto out;
    if (taken) {
        log_info("domain %s already writes %s/%d: snapshot %d was taken", v->deploy,
                 d->l.snap_dir, top, d->snap_id);
        strvec_pushv(&prep.ops, fin.ops.v);
        rc = snap_ops_run(d, &prep, "linking the disk to its new current file");
        goto out;
    }
    log_info("snapshot %d of disk.%d: %s/%d on %s/%d (domain %s, disk %s)", d->snap_id,
             d->vp.disk_id, d->l.snap_dir, d->snap_id + 1, d->l.snap_dir, top, v->deploy,
             v->target);
    if (snap_ops_run(d, &prep, "creating the snapshot overlay") < 0 || quiesce(v, &how) < 0)
        goto out;
    sw = switch_disk(v, &dom);
    unquiesce(v, how);
    if (sw == 1) {
        rc = relink(v);
    } else if (sw == 0) {
        rc = 0;
    } else {
        /* Did it switch after all (a timeout)? */
        _cleanup_free_ char *why = xstrdup(fail_reason());
        struct dom_disk again;

        fail_reset();
        if (dom_read(d, v->deploy, v->target, &again) == 0) {
            bool switched = again.layer[0].id == d->snap_id + 1;

            dom_release(&again);
            if (switched) {
                log_info("domain %s did switch to %s/%d", v->deploy, d->l.snap_dir,
                         d->snap_id + 1);
                rc = relink(v);
                goto out;
            }
            {
                _cleanup_free_ char *p = snap_path(d, d->snap_id + 1);

                if (host_runl(d->h, "rm", "-f", "--", p, NULL) < 0)
                    fail_reset();
            }
        } else {
            fail_reset();
        }
        fail("%s", why);
    }
out:
    dom_release(&dom);
    snap_ops_release(&prep);
    snap_ops_release(&fin);
    return rc;
}

/* ---- raw: a copy of the quiet disk ---- */

static int live_copy(struct live *v)
{
    struct snap_disk *d = &v->d;
    _cleanup_free_ char *dst = snap_path(d, d->snap_id);
    enum quiet how;
    bool kept;
    int rc;

    log_info("snapshot %d of disk.%d: a copy of %s in %s (domain %s)", d->snap_id, d->vp.disk_id,
             d->l.disk, dst, v->deploy);
    if (host_mkdir_p(d->h, d->l.snap_dir) < 0 || quiesce(v, &how) < 0)
        return -1;
    rc = snap_copy(d, d->l.disk, dst, false, &kept);
    unquiesce(v, how);
    return rc;
}

static int live_run(struct live *v, struct tm *t, struct action_ctx *ctx)
{
    _cleanup_free_ char *vm_mad = NULL;
    const struct xml *vm;

    if (snap_open(&v->d, t, ctx) < 0 || !(vm = tm_vm(t)))
        return -1;
    v->deploy = xml_get(vm, "/VM/DEPLOY_ID");
    vm_mad = xml_get(vm, "/VM/HISTORY_RECORDS/HISTORY[last()]/VM_MAD");
    if (check_deploy_id(v->deploy) < 0 ||
        tm_disk_attr(t, v->d.vp.disk_id, "TARGET", &v->target) < 0)
        return -1;
    if (str_empty(v->target))
        return fail("disk %d of VM %d has no TARGET", v->d.vp.disk_id, t->vmid);
    if (v->d.qcow2 && streq(vm_mad, "lxc"))
        return fail("live qcow2 snapshots need a KVM/QEMU VM, not %s", vm_mad);
    return v->d.qcow2 ? live_qcow2(v) : live_copy(v);
}

int tm_snap_create_live(struct action_ctx *ctx)
{
    struct tm t;
    struct live v = { 0 };
    int rc;

    if (tm_start(&t, ctx) < 0)
        return -1;
    rc = live_run(&v, &t, ctx);
    snap_close(&v.d);
    free(v.deploy);
    free(v.target);
    tm_end(&t);
    return rc;
}
