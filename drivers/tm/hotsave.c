/* hotsave.c - the hot disk save-as of a running VM; see hotsave.h and the
 * contract at the top of cpds.c. The domain's state is read by
 * hotsave_dom.c, the instant taken by hotsave_instant.c. */
#include "hotsave_int.h"

#include "cleanup.h"
#include "config.h"
#include "hostpath.h"
#include "log.h"
#include "num.h"
#include "snapshot.h"
#include "transfer.h"
#include "xml.h"

static void hot_release(struct hot *h)
{
    free(h->deploy);
    free(h->target);
    free(h->snap_dir);
    free(h->overlay);
    free(h->relink);
    free(h->top);
    free(h->freeze_why);
    free(h->instant);
}

/* One line of a command's stderr (or how it ended). */
static char *cmd_why(struct cmd *c)
{
    struct sbuf why = SBUF_INIT;

    if (failed()) {
        sbuf_adds(&why, fail_reason());
        fail_reset();
        return sbuf_detach(&why);
    }
    sbuf_rtrim(&c->err);
    sbuf_add_oneline(&why, c->err.buf, c->err.len);
    if (!why.len)
        sbuf_addf(&why, "exit status %d%s", c->status, c->timed_out ? ", timed out" : "");
    return sbuf_detach(&why);
}

static bool is_ours(const struct hot *h, const char *path)
{
    _cleanup_free_ char *dir = path_dirname(path);

    return streq(dir, h->snap_dir) && starts_with(path_basename(path), HOTSAVE_PREFIX);
}

/* disk.N's link target as an absolute normalised path. */
static char *link_path(const struct hot *h, const char *target)
{
    _cleanup_free_ char *j =
        target[0] == '/' ? xstrdup(target) : path_join(h->c->vp.vm_dir, target);

    return path_normalize(j);
}

/* Where disk.N points: K when it is "<snap dir>/hotsave.K.<pid>.<ms>" (the
 * overlay of a hot save, made while disk.N pointed to snapshot file K), -1
 * when it does not point to an overlay of ours, -2 for one with no K. */
static int linked_overlay(const struct hot *h, const char *target)
{
    _cleanup_free_ char *abs = NULL, *num = NULL;
    const char *name;
    int k;

    if (!target)
        return -1;
    abs = link_path(h, target);
    if (!is_ours(h, abs))
        return -1;
    name = path_basename(abs) + strlen(HOTSAVE_PREFIX);
    num = xstrndup(name, strcspn(name, "."));
    return parse_id(num, &k) == 0 ? k : -2;
}

/* `target` with its last component replaced by `name`, in the same form
 * (relative names stay relative). */
static char *sibling(const char *target, const char *name)
{
    const char *slash = strrchr(target, '/');

    return slash ? xasprintf("%.*s/%s", (int)(slash - target), target, name) : xstrdup(name);
}

static const char relink_script[] = "l=$1 t=$2; " RELINK_SH;

static int relink(struct hot *h, const char *target)
{
    _cleanup_free_ char *what = xasprintf("pointing %s to %s", h->c->vp.path, target);

    return xfer_sh(h->c->h, what, 0, NULL, relink_script, h->c->vp.path, target, NULL);
}

/* ---- bringing the domain back on its disk ---- */

/* The argument naming layer i for --base: "vda[3]", or its path. */
static char *layer_arg(const struct hot *h, const struct layer *l)
{
    return l->index ? xasprintf("%s[%s]", h->target, l->index) : xstrdup(l->path);
}

/* A virsh call on the disk; the reason of a failure in *why. */
static int virsh_disk(struct hot *h, const char *sub, unsigned limit, const char *const *extra,
                      char **why)
{
    struct cmd c = CMD_INIT;
    int rc;

    virsh_cmd(&c, limit, sub);
    strvec_pushl(&c.args, h->deploy, h->target, NULL);
    strvec_pushv(&c.args, extra);
    rc = host_run_status(h->c->h, &c) == 0 && c.status == 0 ? 0 : -1;
    if (rc < 0)
        *why = cmd_why(&c);
    cmd_release(&c);
    return rc;
}

/* $1 the link, $2 its target once the domain has left the overlay ("":
 * none), then the virsh command. Exit 3: pivoted, not relinked. In one
 * command on the host, so that a killed action cannot leave disk.N on an
 * overlay the domain left (a stale layer over newer data). */
static const char pivot_script[] =
    "l=$1 t=$2; shift 2; \"$@\" || exit 1; [ -n \"$t\" ] || exit 0; " RELINK_SH " || exit 3";

static int virsh_then_relink(struct hot *h, const char *sub, unsigned limit,
                             const char *const *extra, const char *restore, char **why)
{
    struct cmd c = CMD_INIT;
    int rc;

    strvec_pushl(&c.args, "sh", "-c", pivot_script, "sh", h->c->vp.path, restore ? restore : "",
                 NULL);
    virsh_cmd(&c, limit, sub);
    strvec_pushl(&c.args, h->deploy, h->target, NULL);
    strvec_pushv(&c.args, extra);
    rc = host_run_status(h->c->h, &c) == 0 && c.status == 0 ? 0 : -1;
    if (rc < 0)
        *why = cmd_why(&c);
    else if (restore)
        log_info("%s points to %s again", h->c->vp.path, restore);
    cmd_release(&c);
    return rc;
}

/* Commits the active layer (ours) into the layer right below it, and only
 * into that one: --shallow and --base name it (without them libvirt
 * commits into the bottom of the chain, the image other VMs share). */
static int commit(struct hot *h, const struct dom_state *s, const char *restore, char **why)
{
    _cleanup_free_ char *base = layer_arg(h, &s->l[1]);
    unsigned limit = config_uint("COPY_TIMEOUT");
    char secs[16];
    const char *extra[] = { "--active", "--shallow", "--base", base, "--pivot",
                            "--wait",   "--timeout", secs,     NULL };

    snprintf(secs, sizeof(secs), "%u", limit);
    log_info("merging %s back into %s (virsh blockcommit --active --shallow --pivot)", s->l[0].path,
             s->l[1].path);
    return virsh_then_relink(h, "blockcommit", limit + 30, extra, restore, why);
}

/* Removes the hotsave files the domain does not use, and the snapshot
 * directory when nothing else is in it (one made for the overlay). */
static const char remove_script[] =
    "dir=$1; shift; rm -f -- \"$@\" || exit 1; rmdir -- \"$dir\" 2>/dev/null; "
    "if [ -d \"$dir\" ]; then sync -- \"$dir\"; else sync -- \"${dir%/*}\"; fi";

static int remove_leftovers(struct hot *h, const struct dom_state *s)
{
    struct strvec args = STRVEC_INIT;
    int rc;

    if (!s->leftovers.nr && s->dir != 'E')
        return 0;
    strvec_push(&args, h->snap_dir);
    for (size_t i = 0; i < s->leftovers.nr; i++) {
        _cleanup_free_ char *p = path_join(h->snap_dir, s->leftovers.v[i]);

        if (h->unanswered && streq(p, h->overlay)) {
            /* a snapshot still under way in libvirt may be about to use it */
            log_warn("%s is left for the next save of the disk to remove", p);
            continue;
        }
        if (!h->overlay || !streq(p, h->overlay))
            log_info("removing %s, left by an interrupted hot save", p);
        strvec_push(&args, p);
    }
    if (args.nr == 1 && s->dir != 'E') {
        strvec_clear(&args);
        return 0;
    }
    rc = xfer_shv(h->c->h, "removing the temporary overlay", 0, NULL, remove_script, &args);
    strvec_clear(&args);
    return rc;
}

/*
 * Brings the domain back on its own disk: the overlay of this attempt, or
 * of an interrupted one, merged back (a commit job an earlier run left is
 * pivoted when ready, aborted and done again otherwise), then every hotsave
 * file removed. Refuses what it did not make: a hotsave layer below the
 * active one, a block job on a disk whose active layer is not ours. With
 * `final`, the state it ends with (the caller releases it).
 */
static int converge(struct hot *h, struct dom_state *final)
{
    struct dom_state s = { 0 };
    _cleanup_free_ char *why = NULL;
    int round, rc = -1;

    for (round = 0;; round++) {
        _cleanup_free_ char *restore = NULL;
        bool top_ours;
        int k;

        if (hot_inspect(h, &s) < 0)
            return -1;
        top_ours = is_ours(h, s.l[0].path);
        k = linked_overlay(h, s.link);
        if (k == -2) {
            fail("%s points to %s, a temporary overlay whose name says no snapshot file: "
                 "point it back by hand",
                 h->c->vp.path, s.link);
            goto out;
        }
        if (k >= 0) {
            char num[16];

            snprintf(num, sizeof(num), "%d", k);
            restore = sibling(s.link, num);
        }
        for (size_t i = 1; i < s.nl; i++) {
            if (is_ours(h, s.l[i].path)) {
                fail("domain %s has the temporary overlay %s below its active layer %s "
                     "(a snapshot was taken on it): merge it by hand (virsh blockcommit)",
                     h->deploy, s.l[i].path, s.l[0].path);
                goto out;
            }
        }
        if (s.job && !top_ours) {
            fail("disk %s of domain %s has a block job (%s) that qcow2c's hot save did not "
                 "start: let it finish or abort it (virsh blockjob %s %s --abort)",
                 h->target, h->deploy, s.job, h->deploy, h->target);
            goto out;
        }
        if (!top_ours && restore) {
            /* merged by an action that died before it could relink */
            log_info("%s points to %s, which the domain no longer writes: back to %s",
                     h->c->vp.path, s.link, restore);
            if (relink(h, restore) < 0)
                goto out;
            free(s.link);
            s.link = TAKE_PTR(restore);
        }
        if (!top_ours)
            break;
        if (round == MERGE_ROUNDS) {
            fail("domain %s still writes the temporary overlay %s: %s", h->deploy, s.l[0].path,
                 why ? why : "it could not be merged back");
            goto out;
        }
        if (s.nl < 2) {
            fail("the temporary overlay %s of domain %s has no backing file", s.l[0].path,
                 h->deploy);
            goto out;
        }
        free(why);
        why = NULL;
        if (s.job && s.ready) {
            const char *pivot[] = { "--pivot", NULL };

            log_info("pivoting the finished merge of %s (block job %s)", s.l[0].path, s.job);
            virsh_then_relink(h, "blockjob", VIRSH_QUICK, pivot, restore, &why);
        } else if (s.job) {
            const char *abort_job[] = { "--abort", NULL };

            log_info("aborting the unfinished block job %s on %s: the merge starts again", s.job,
                     s.l[0].path);
            virsh_disk(h, "blockjob", VIRSH_QUICK, abort_job, &why);
        } else {
            commit(h, &s, restore, &why);
        }
        if (why)
            log_warn("%s", why);
        hot_state_release(&s);
    }
    rc = remove_leftovers(h, &s);
    if (rc == 0 && final) {
        /* what the domain runs on now (the hotsave files are gone) */
        strvec_clear(&s.leftovers);
        *final = s;
        return 0;
    }
out:
    hot_state_release(&s);
    return rc;
}

/* ---- the image in oned ---- */

static bool same_source(const char *source, const char *target)
{
    _cleanup_free_ char *norm = NULL;

    if (str_empty(source))
        return false;
    norm = path_normalize(source);
    return streq(norm, target);
}

/* The LOCKED image NEW_SOURCE belongs to: DISK/HOTPLUG_SAVE_AS when it
 * names it (oned sets it before the transfer), otherwise the image pool. */
static int find_image(struct hot *h)
{
    struct cpds *c = h->c;
    _cleanup_free_ char *sid = NULL, *doc = NULL;
    struct xml *x = NULL;
    int id, n, best = -1, best_rank = -1;

    if (tm_disk_attr(c->t, c->vp.disk_id, "HOTPLUG_SAVE_AS", &sid) < 0)
        return -1;
    if (!str_empty(sid) && parse_id(sid, &id) == 0) {
        if (one_image_info(c->t->one, id, &doc) == 0 &&
            (x = xml_doc_parse(doc, strlen(doc), "IMAGE"))) {
            _cleanup_free_ char *src = xml_get(x, "/IMAGE/SOURCE");

            xml_free(x);
            if (same_source(src, c->target)) {
                h->image_id = id;
                return 0;
            }
        }
        fail_reset();
        free(doc);
        doc = NULL;
    }
    if (one_imagepool_info(c->t->one, -2, -1, -1, &doc) < 0)
        return fail_context("cannot find the image of %s in oned", c->target);
    x = xml_doc_parse(doc, strlen(doc), "IMAGE_POOL");
    if (!x)
        return fail_context("oned's image pool");
    n = xml_count(x, "/IMAGE_POOL/IMAGE");
    for (int i = 1; i <= n; i++) {
        _cleanup_free_ char *src = xml_get(x, "/IMAGE_POOL/IMAGE[%d]/SOURCE", i);
        _cleanup_free_ char *iid = NULL, *state = NULL, *vm = NULL;
        int rank = 0, v;

        if (!same_source(src, c->target))
            continue;
        iid = xml_get(x, "/IMAGE_POOL/IMAGE[%d]/ID", i);
        state = xml_get(x, "/IMAGE_POOL/IMAGE[%d]/STATE", i);
        vm = xml_get(x, "/IMAGE_POOL/IMAGE[%d]/TEMPLATE/SAVED_VM_ID", i);
        if (parse_id(iid, &id) < 0)
            continue;
        rank = (streq(state, "4") ? 2 : 0) + (parse_id(vm, &v) == 0 && v == c->t->vmid);
        if (rank > best_rank) {
            best = id;
            best_rank = rank;
        }
    }
    xml_free(x);
    if (best < 0)
        return fail("oned has no image whose SOURCE is %s (was it deleted?)", c->target);
    h->image_id = best;
    return 0;
}

/* What was achieved, into the new image's template. */
static int record(struct hot *h)
{
    struct cpds *c = h->c;
    struct xml_tmpl t;
    _cleanup_free_ char *doc = NULL;
    bool frozen = h->freeze == FREEZE_DONE;
    int rc;

    xml_tmpl_begin(&t, "TEMPLATE");
    xml_tmpl_add(&t, "HOT_SAVE_CONSISTENCY", frozen ? "filesystem-frozen" : "crash-consistent");
    xml_tmpl_add(&t, "HOT_SAVE_INSTANT", h->instant);
    xml_tmpl_addf(&t, "HOT_SAVE_VM_ID", "%d", c->t->vmid);
    xml_tmpl_addf(&t, "HOT_SAVE_DISK_ID", "%d", c->vp.disk_id);
    xml_tmpl_add(&t, "HOT_SAVE_TARGET", h->target);
    if (frozen)
        xml_tmpl_add(&t, "HOT_SAVE_NOTE", "file systems frozen by the guest agent");
    else if (h->freeze == FREEZE_NO_AGENT)
        xml_tmpl_addf(&t, "HOT_SAVE_NOTE",
                      "no guest agent (%s): the state of the disk at "
                      "one instant, as after a power cut",
                      h->freeze_why);
    else
        xml_tmpl_addf(&t, "HOT_SAVE_NOTE",
                      "the freeze failed (%s): the state of the disk at "
                      "one instant, as after a power cut",
                      h->freeze_why);
    doc = xml_tmpl_end(&t);
    rc = one_image_update(c->t->one, h->image_id, doc, 1);
    if (rc < 0)
        return fail_context("cannot record the hot save in image %d", h->image_id);
    log_info("image %d: HOT_SAVE_CONSISTENCY=%s HOT_SAVE_INSTANT=%s", h->image_id,
             frozen ? "filesystem-frozen" : "crash-consistent", h->instant);
    return 0;
}

/* ---- the copy ---- */

/* The copy has the frozen state's size (qemu-img compare takes a longer
 * file whose tail is zero for an equal one), and the SIZE oned gives the
 * new image (the disk's, in MB, never measured again) is checked against
 * it. */
static int check_size(struct hot *h, const struct image_info *src)
{
    _cleanup_free_ char *size = NULL;
    struct image_info ii;
    uint64_t mb;
    int rc = 0;

    if (host_probe_image(h->c->h, h->c->part, &ii) < 0)
        return -1;
    if (!src->size_known || !ii.size_known || ii.virtual_size != src->virtual_size)
        rc = fail("the copy of %s has %llu bytes, its source %llu", h->top,
                  (unsigned long long)ii.virtual_size, (unsigned long long)src->virtual_size);
    if (rc == 0 && tm_disk_attr(h->c->t, h->c->vp.disk_id, "SIZE", &size) == 0 &&
        parse_u64(str_empty(size) ? "-" : size, UINT64_MAX >> 20, &mb) == 0 &&
        mb != (ii.virtual_size + (1u << 20) - 1) >> 20)
        log_warn("oned gives the new image the disk's SIZE, %llu MB; the copy has %llu bytes",
                 (unsigned long long)mb, (unsigned long long)ii.virtual_size);
    image_info_release(&ii);
    return rc;
}

static int copy(struct hot *h)
{
    struct cpds *c = h->c;
    struct image_info src;
    int rc;

    if (host_probe_image(c->h, h->top, &src) < 0)
        return -1;
    if (str_empty(c->format)) {
        free(c->format);
        c->format = xstrdup(src.format);
        log_info("disk %d has no FORMAT in oned: writing %s, the format of %s", c->vp.disk_id,
                 c->format, h->top);
    }
    free(c->src);
    c->src = xstrdup(h->top);
    c->running = true;
    /* always verified: the frozen state is there to compare with only until
     * the overlay is merged back */
    rc = cpds_write_part(c, true);
    if (rc == 0 && check_size(h, &src) < 0) {
        xfer_drop(c->h, c->part);
        rc = -1;
    }
    image_info_release(&src);
    return rc;
}

/* ---- the whole ---- */

static int read_vm(struct hot *h)
{
    struct cpds *c = h->c;
    _cleanup_free_ char *vm_mad = NULL, *clone = NULL, *source = NULL, *chain = NULL;
    const struct xml *vm = tm_vm(c->t);
    int n = c->vp.disk_id;

    if (!vm)
        return -1;
    h->deploy = xml_get(vm, "/VM/DEPLOY_ID");
    vm_mad = xml_get(vm, "/VM/HISTORY_RECORDS/HISTORY[last()]/VM_MAD");
    if (check_deploy_id(h->deploy) < 0 || tm_disk_attr(c->t, n, "TARGET", &h->target) < 0 ||
        tm_disk_attr(c->t, n, "CLONE", &clone) < 0 || tm_disk_attr(c->t, n, "SOURCE", &source) < 0)
        return -1;
    if (!hot_plain_target(h->target))
        return fail("disk %d of VM %d has no usable TARGET ('%s')", n, c->t->vmid,
                    h->target ? h->target : "");
    if (streq(vm_mad, "lxc"))
        return fail("a hot save needs a KVM/QEMU VM, not %s", vm_mad);
    /* where the disk's snapshots live (snapshot.h): the overlay goes there */
    if (!c->t->ssh_mode && !is_yes(clone)) {
        if (str_empty(source))
            return fail("disk %d of VM %d is persistent but has no SOURCE", n, c->t->vmid);
        chain = image_path_on_host(&c->vp, source);
    } else {
        chain = xstrdup(c->vp.path);
    }
    h->snap_dir = xasprintf("%s.snap", chain);
    return 0;
}

/* The overlay's name, unique per attempt (never a file an earlier attempt
 * may still hold): hotsave.K.<pid>.<ms> when disk.N points to snapshot
 * file K, and disk.N then points to it while the domain writes it, so that
 * the writes made during the copy stay under disk.N even when the action
 * dies before the merge (a VM booted again from disk.N finds them); the
 * merge points it back to K. hotsave.x.<pid>.<ms> otherwise (disk.N is
 * not a link into the snapshot directory), disk.N left alone. */
static void plan_overlay(struct hot *h, const struct dom_state *s)
{
    _cleanup_free_ char *abs = s->link ? link_path(h, s->link) : NULL;
    _cleanup_free_ char *dir = abs ? path_dirname(abs) : NULL;
    _cleanup_free_ char *name = NULL;
    int k = -1;

    if (!dir || !streq(dir, h->snap_dir) || parse_id(path_basename(abs), &k) < 0)
        k = -1;
    if (k >= 0)
        name = xasprintf("%s%d.%d.%lld", HOTSAVE_PREFIX, k, (int)getpid(), monotonic_ms());
    else
        name = xasprintf("%sx.%d.%lld", HOTSAVE_PREFIX, (int)getpid(), monotonic_ms());
    h->overlay = path_join(h->snap_dir, name);
    h->relink = k >= 0 ? sibling(s->link, name) : NULL;
}

/* After a failure past the snapshot: the domain back on its disk, the
 * first reason kept. */
static int undo(struct hot *h)
{
    _cleanup_free_ char *why = xstrdup(failed() ? fail_reason() : "the hot save failed");

    fail_reset();
    xfer_drop(h->c->h, h->c->part);
    if (converge(h, NULL) < 0) {
        _cleanup_free_ char *more = xstrdup(fail_reason());

        fail_reset();
        return fail("%s; and %s (a new save of this disk merges it first)", why, more);
    }
    return fail("%s", why);
}

static int save(struct hot *h)
{
    struct cpds *c = h->c;
    struct dom_state s = { 0 };
    int rc;

    /* an interrupted attempt first: the domain on its own disk, nothing
     * left; then the image (deleted meanwhile: nothing is written). A .part
     * an earlier attempt left is overwritten by the copy. */
    if (converge(h, &s) < 0)
        return -1;
    if (find_image(h) < 0) {
        hot_state_release(&s);
        return -1;
    }
    h->top = xstrdup(s.l[0].path);
    plan_overlay(h, &s);
    if (hot_take_instant(h, &s) < 0) {
        hot_state_release(&s);
        return undo(h);
    }
    hot_state_release(&s);
    if (hot_inspect(h, &s) < 0)
        return undo(h);
    if (s.nl < 2 || !streq(s.l[0].path, h->overlay) || !streq(s.l[1].path, h->top)) {
        fail("after the snapshot domain %s writes %s on %s, not %s on %s", h->deploy, s.l[0].path,
             s.nl > 1 ? s.l[1].path : "nothing", h->overlay, h->top);
        hot_state_release(&s);
        return undo(h);
    }
    hot_state_release(&s);
    if (copy(h) < 0 || record(h) < 0 || xfer_publish(c->h, c->part, c->dst) < 0)
        return undo(h);
    log_info("disk %d of VM %d saved as %s", c->vp.disk_id, c->t->vmid, c->dst);
    rc = converge(h, NULL);
    if (rc < 0)
        return fail_context("disk %d was saved as %s, but the temporary overlay could not be "
                            "merged back (a new save of this disk merges it first)",
                            c->vp.disk_id, c->dst);
    log_info("domain %s writes %s again", h->deploy, h->top);
    return 0;
}

int hotsave(struct cpds *c)
{
    struct hot h = { .c = c, .image_id = -1 };
    int rc;

    rc = read_vm(&h);
    if (rc == 0)
        rc = save(&h);
    hot_release(&h);
    return rc;
}
