/*
 * mvds     HOST:VM_DIR/disk.N SOURCE VM_ID DS_ID   shared system datastore
 * mvds.ssh HOST:VM_DIR/disk.N SOURCE VM_ID DS_ID   local system datastore
 *
 * A persistent disk goes back to its image at the end of the VM's life
 * (epilog, detach; protocol §2.3 mvds, §3.2, traps 17, 23). SOURCE is the
 * image as oned writes it (no host, "//" kept); DS_ID its datastore.
 *  - mvds: the disk already lives in the image datastore (ln linked
 *    disk.N -> SOURCE.snap/<n>, or -> SOURCE for raw), so nothing moves, as
 *    in OpenNebula. On HOST, disk.N is checked to point there; anything else
 *    (a regular file, a link elsewhere) is logged as a warning, and so is a
 *    host that cannot be asked: the epilog does not fail for a check.
 *  - mvds.ssh: on HOST, where the system datastore is local and the image
 *    datastore mounted at SOURCE, the VM's copy goes back as OpenNebula's
 *    qcow2/mvds.ssh leaves it. disk.N -> disk.N.snap/<top> (the qcow2
 *    layout): every numbered file of disk.N.snap/ (and K.current, its path
 *    rewritten to SOURCE.snap) goes to SOURCE.snap/, backing names become
 *    <name>.snap/<k> (qemu-img rebase -u), the self link
 *    SOURCE.snap/<name>.snap -> . is made, SOURCE becomes the link
 *    <name>.snap/<top>, and numbered files of SOURCE.snap that are not the
 *    VM's (snapshots deleted while it ran) go: OpenNebula's ln links the
 *    highest number, so a stale one would be taken for the disk. disk.N a
 *    regular file (raw): its snapshot copies likewise, then disk.N becomes
 *    SOURCE.
 *    Unlike stock, SOURCE links to the VM's own top file rather than the
 *    highest number (the same on any sound layout; a layout where they
 *    differ is refused), and nothing is lost on a failure at any point:
 *    each file is first staged as SOURCE.snap/<k>.new beside its final
 *    name - a hard link when both datastores are on one file system (the
 *    backing name then rewritten in place, with a link
 *    disk.N.snap/<name>.snap -> . keeping the VM's copy readable), else a
 *    sparse copy, rebased, given its source's time, flushed - then all
 *    staged files are renamed over their final names at once, SOURCE is
 *    switched, and only then does the VM's copy go (disk.N first, then
 *    disk.N.snap). Until the switch the image is the old one, complete;
 *    from then on it is the new one, complete; the VM's copy stays until
 *    the new image is in place.
 * HOST without the VM's copy while the front-end has it (recover --retry of
 * a terminate of an undeployed VM names the last host, trap 18): done on
 * the front-end.
 * Re-run: a staged or final file that already is the source (same file,
 * or same size and time) is kept, everything else is redone; disk.N gone
 * with disk.N.snap left is an interrupted clean-up, finished once SOURCE
 * links to files identical to the VM's; no numbered file in disk.N.snap
 * means the disk is already back (what is left, such as the dangling
 * disk.N OpenNebula's mvds.ssh leaves, is removed). The layout, not oned,
 * tells raw from qcow2.
 * Refused: a path other than host:<vm dir>/disk.N of this VM, a SOURCE
 * that is not <datastores>/DS_ID/<name> or has a host, a VM layout this
 * action cannot read safely (disk.N pointing elsewhere, a backing file
 * outside disk.N.snap, a disk.N.snap without disk.N whose files are not
 * all in the image).
 *
 * First of all, a deferred save pending for the disk (issue 5, deferred.h)
 * is made; oned is asked for the VM for that, and a VM that cannot be read
 * keeps its disk where it is.
 */
#include "tm_actions.h"

#include "cleanup.h"
#include "config.h"
#include "deferred.h"
#include "hostpath.h"
#include "layout.h"
#include "log.h"
#include "num.h"
#include "provision.h"
#include "qemu_img.h"
#include "transfer.h"

struct entry {
    char *name;
    char kind; /* as XFER_ENT_FN prints it */
    char *info;
};

struct listing {
    struct entry *e;
    size_t n, alloc;
};

/* One file of the VM's copy to bring back. */
struct item {
    const struct entry *vm; /* in disk.N.snap */
    int id;                 /* the snapshot number; -1 for K.current */
    char *rebase_to;        /* new backing name, NULL: none to change */
    char *rebase_fmt;       /* its format */
    char *text;             /* K.current: the new content */
};

struct mvds {
    struct tm *t;
    struct vm_path vp;
    char *source;       /* normalised; as the host sees it (no rewrite, as stock) */
    struct layout disk; /* disk.N */
    struct layout img;  /* SOURCE */
    struct host *h;
    struct entry disk_e, src_e;
    struct listing vm_dir, img_dir;
    struct item *items;
    size_t nitems;
    bool same_fs;
};

static void listing_release(struct listing *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->e[i].name);
        free(l->e[i].info);
    }
    free(l->e);
    memset(l, 0, sizeof(*l));
}

static void mvds_release(struct mvds *m)
{
    vm_path_release(&m->vp);
    free(m->source);
    layout_release(&m->disk);
    layout_release(&m->img);
    free(m->disk_e.info);
    free(m->src_e.info);
    listing_release(&m->vm_dir);
    listing_release(&m->img_dir);
    for (size_t i = 0; i < m->nitems; i++) {
        free(m->items[i].rebase_to);
        free(m->items[i].rebase_fmt);
        free(m->items[i].text);
    }
    free(m->items);
}

static const struct entry *find(const struct listing *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (streq(l->e[i].name, name))
            return &l->e[i];
    return NULL;
}

/* "K.current" with K a snapshot number. */
static bool is_current_name(const char *name)
{
    const char *dot = strchr(name, '.');
    _cleanup_free_ char *num = NULL;
    int id;

    if (!dot || !streq(dot, ".current"))
        return false;
    num = xstrndup(name, (size_t)(dot - name));
    return parse_id(num, &id) == 0;
}

/* ---- what is there ---- */

/* $1 disk.N, $2 disk.N.snap, $3 SOURCE, $4 SOURCE.snap: the two paths,
 * then each directory's entries (name, kind, info), each list ended by "/". */
static const char inspect_script[] =
    XFER_ENT_FN "ent \"$1\"; ent \"$3\"; "
                "for d in \"$2\" \"$4\"; do "
                "for f in \"$d\"/*; do [ -e \"$f\" ] || [ -L \"$f\" ] || continue; "
                "printf '%s\\0' \"${f##*/}\"; ent \"$f\"; done; printf '/\\0'; done";

static int take_listing(const struct strvec *r, size_t *i, struct listing *l)
{
    while (*i < r->nr && !streq(r->v[*i], "/")) {
        struct entry *e;

        if (*i + 2 >= r->nr)
            return -1;
        ALLOC_GROW(l->e, l->n + 1, l->alloc);
        e = &l->e[l->n++];
        e->name = xstrdup(r->v[*i]);
        e->kind = r->v[*i + 1][0];
        e->info = xstrdup(r->v[*i + 2]);
        *i += 3;
    }
    if (*i >= r->nr)
        return -1;
    (*i)++;
    return 0;
}

static int inspect(struct mvds *m)
{
    _cleanup_free_ char *what = xasprintf("examining %s", m->disk.disk);
    struct sbuf out = SBUF_INIT;
    struct strvec r = STRVEC_INIT;
    size_t i = 4;
    int rc;

    rc = xfer_sh(m->h, what, 0, &out, inspect_script, m->disk.disk, m->disk.snap_dir, m->img.disk,
                 m->img.snap_dir, NULL);
    if (rc == 0) {
        xfer_split0(&out, &r);
        if (r.nr < 6 || take_listing(&r, &i, &m->vm_dir) < 0 ||
            take_listing(&r, &i, &m->img_dir) < 0 || i != r.nr) {
            rc =
                fail("unexpected answer from %s while examining %s", host_name(m->h), m->disk.disk);
        } else {
            m->disk_e.kind = r.v[0][0];
            m->disk_e.info = xstrdup(r.v[1]);
            m->src_e.kind = r.v[2][0];
            m->src_e.info = xstrdup(r.v[3]);
        }
    }
    strvec_clear(&r);
    sbuf_release(&out);
    return rc;
}

/* The absolute, normalised target of a link found in directory `dir`. */
static char *link_target(const char *dir, const char *target)
{
    return target[0] == '/' ? path_normalize(target) : path_join(dir, target);
}

/* ---- mvds: the disk is in the image datastore already ---- */

static int check_shared(struct mvds *m)
{
    _cleanup_free_ char *on_host = image_path_on_host(&m->vp, m->source);
    _cleanup_free_ char *snap = xasprintf("%s.snap", on_host);
    _cleanup_free_ char *target = NULL, *tdir = NULL;
    struct rstat st;

    if (host_stat(m->h, m->vp.path, &st) < 0) {
        log_warn("cannot check that disk.%d is in image %s: %s", m->vp.disk_id, m->source,
                 fail_reason());
        fail_reset();
        return 0;
    }
    if (st.kind == 'L') {
        _cleanup_free_ char *resolved = link_target(m->vp.vm_dir, st.target);

        target = xstrdup(st.target);
        tdir = path_dirname(resolved);
        if (streq(tdir, snap) || streq(resolved, on_host)) {
            log_info("disk.%d is in image %s already: nothing to move", m->vp.disk_id, m->source);
        } else {
            log_warn("disk.%d points to %s, not into %s: its changes are not in the image",
                     m->vp.disk_id, target, snap);
        }
    } else if (st.kind == 'N') {
        log_info("disk.%d is not in %s (removed already): nothing to move", m->vp.disk_id,
                 m->vp.vm_dir);
    } else {
        log_warn("disk.%d is not a link into %s but a %s of the system datastore: its "
                 "changes are not in the image (is the system datastore shared?)",
                 m->vp.disk_id, snap, st.kind == 'F' ? "file" : "directory or device");
    }
    rstat_release(&st);
    return 0;
}

/* ---- mvds.ssh: the VM's copy goes back ---- */

static int cmp_items(const void *a, const void *b)
{
    const struct item *x = a, *y = b;

    /* numbered files ascending (backing files first), K.current last */
    if ((x->id < 0) != (y->id < 0))
        return x->id < 0 ? 1 : -1;
    if (x->id != y->id)
        return (x->id > y->id) - (x->id < y->id);
    return strcmp(x->vm->name, y->vm->name);
}

static bool have_id(const struct mvds *m, int id)
{
    for (size_t i = 0; i < m->nitems; i++)
        if (m->items[i].id == id)
            return true;
    return false;
}

/* The VM's files to bring back: numbered regular files and K.current. */
static int collect(struct mvds *m)
{
    m->items = xcalloc(m->vm_dir.n + 1, sizeof(*m->items));
    for (size_t i = 0; i < m->vm_dir.n; i++) {
        const struct entry *e = &m->vm_dir.e[i];
        int id;

        if (parse_id(e->name, &id) == 0) {
            if (e->kind != 'F')
                return fail("%s/%s on %s is not a regular file: refusing to move a layout "
                            "qcow2c did not make",
                            m->disk.snap_dir, e->name, host_name(m->h));
            m->items[m->nitems++] = (struct item){ .vm = e, .id = id };
        } else if (is_current_name(e->name) && e->kind == 'F') {
            m->items[m->nitems++] = (struct item){ .vm = e, .id = -1 };
        }
    }
    qsort(m->items, m->nitems, sizeof(*m->items), cmp_items);
    return 0;
}

static size_t numbered(const struct mvds *m)
{
    size_t n = 0;

    for (size_t i = 0; i < m->nitems; i++)
        n += m->items[i].id >= 0;
    return n;
}

/* Backing names for the image datastore: disk.N.snap/<k> -> <name>.snap/<k>.
 * A backing file that is not one of the VM's numbered files is refused:
 * rewriting it would break the chain. */
static int plan_backing(struct mvds *m, struct item *it)
{
    _cleanup_free_ char *path = path_join(m->disk.snap_dir, it->vm->name);
    struct image_info ii;
    int bid, rc = 0;

    if (host_probe_image(m->h, path, &ii) < 0)
        return -1;
    if (ii.backing_file) {
        const char *base = path_basename(ii.backing_file);
        _cleanup_free_ char *want = NULL;

        if (parse_id(base, &bid) < 0 || !have_id(m, bid) || bid == it->id) {
            rc = fail("%s on %s has the backing file '%s', which is not a snapshot in %s: "
                      "refusing to move a chain that would break",
                      path, host_name(m->h), ii.backing_file, m->disk.snap_dir);
        } else {
            want = layout_snap_rel(&m->img, bid);
            if (!streq(ii.backing_file, want)) {
                it->rebase_to = TAKE_PTR(want);
                it->rebase_fmt = xstrdup(ii.backing_format ? ii.backing_format : "qcow2");
            }
        }
    }
    image_info_release(&ii);
    return rc;
}

/* K.current names the file snapshot K now lives in; its path moves along. */
static int plan_current(struct mvds *m, struct item *it)
{
    _cleanup_free_ char *path = path_join(m->disk.snap_dir, it->vm->name);
    struct sbuf sb = SBUF_INIT;
    int id, rc = 0;

    if (host_read_file(m->h, path, &sb) < 0)
        return -1;
    sbuf_rtrim(&sb);
    if (parse_id(path_basename(sb.buf), &id) < 0)
        rc = fail("%s on %s holds '%s', not the path of a snapshot", path, host_name(m->h), sb.buf);
    else
        it->text = layout_snap(&m->img, id);
    sbuf_release(&sb);
    return rc;
}

/* $1 SOURCE.snap, $2 its self link, $3 the link that keeps the VM's copy
 * readable once rebased ("" for none), $4 a VM file, $5 a scratch name in
 * $1: prints "same" when $4 can be hard-linked into $1. */
static const char prepare_script[] =
    "mkdir -p -- \"$1\" || exit 1; "
    "if [ -n \"$2\" ] && [ \"$(readlink -- \"$2\")\" != . ]; then "
    "rm -f -- \"$2.lnk\" && ln -s . \"$2.lnk\" && mv -fT -- \"$2.lnk\" \"$2\" || exit 1; fi; "
    "rm -f -- \"$5\"; if ln -- \"$4\" \"$5\" 2>/dev/null; then rm -f -- \"$5\"; m=same; "
    "else m=cross; fi; "
    "if [ $m = same ] && [ -n \"$3\" ] && [ \"$(readlink -- \"$3\")\" != . ]; then "
    "rm -f -- \"$3.lnk\" && ln -s . \"$3.lnk\" && mv -fT -- \"$3.lnk\" \"$3\" || exit 1; fi; "
    "echo $m";

static int prepare(struct mvds *m, bool chain)
{
    _cleanup_free_ char *what = xasprintf("preparing %s", m->img.snap_dir);
    _cleanup_free_ char *compat = xasprintf("%s/%s.snap", m->disk.snap_dir, m->img.name);
    _cleanup_free_ char *probe = xasprintf("%s/.qcow2c-mvds-%d", m->img.snap_dir, m->t->vmid);
    _cleanup_free_ char *first = path_join(m->disk.snap_dir, m->items[0].vm->name);
    struct sbuf out = SBUF_INIT;
    int rc;

    rc = xfer_sh(m->h, what, 0, &out, prepare_script, m->img.snap_dir, chain ? m->img.self : "",
                 chain ? compat : "", first, probe, NULL);
    sbuf_rtrim(&out);
    m->same_fs = streq(out.buf, "same");
    sbuf_release(&out);
    return rc;
}

/* The staged or final file in SOURCE.snap already is `vm`'s copy. */
static bool in_place(const struct mvds *m, const struct entry *vm)
{
    _cleanup_free_ char *staged = xasprintf("%s.new", vm->name);
    const struct entry *f = find(&m->img_dir, vm->name);
    const struct entry *s = find(&m->img_dir, staged);

    for (int k = 0; k < 2; k++) {
        const struct entry *e = k ? s : f;

        if (e && e->kind == 'F' &&
            (xfer_same_file(e->info, vm->info) || xfer_same_data(e->info, vm->info)))
            return true;
    }
    return false;
}

/* $1 VM file, $2 staged name: a hard link. */
static const char link_script[] =
    "[ \"$1\" -ef \"$2\" ] && exit 0; "
    "rm -f -- \"$2.lnk\" && ln -- \"$1\" \"$2.lnk\" && mv -fT -- \"$2.lnk\" \"$2\"";

/* $1 VM file, $2 staged name, then the rebase command for $2.part (if
 * any): a sparse copy with the source's time, flushed, renamed. */
static const char copy_script[] =
    "s=$1 p=$2.part d=$2; shift 2; rm -f -- \"$p\" && cp --sparse=always -- \"$s\" \"$p\" && "
    "{ [ $# -eq 0 ] || \"$@\"; } && touch -r \"$s\" -- \"$p\" && sync -- \"$p\" && "
    "mv -fT -- \"$p\" \"$d\" && exit 0; rc=$?; rm -f -- \"$p\"; exit $rc";

/* $1 staged name, $2 content. */
static const char text_script[] =
    "printf '%s\\n' \"$2\" >\"$1.part\" && sync -- \"$1.part\" && mv -fT -- \"$1.part\" \"$1\"";

static int stage(struct mvds *m, const struct item *it)
{
    _cleanup_free_ char *src = path_join(m->disk.snap_dir, it->vm->name);
    _cleanup_free_ char *dst = path_join(m->img.snap_dir, it->vm->name);
    _cleanup_free_ char *staged = xasprintf("%s.new", dst);
    _cleanup_free_ char *what = xasprintf("moving %s to %s", src, dst);
    struct strvec args = STRVEC_INIT;
    int rc;

    if (it->text) /* rewritten: staged again every time (a few bytes) */
        return xfer_sh(m->h, what, 0, NULL, text_script, staged, it->text, NULL);
    if (in_place(m, it->vm)) {
        log_debug("%s is in place already", dst);
        return 0;
    }
    if (m->same_fs) {
        if (it->rebase_to) {
            struct cmd c = CMD_INIT;

            qi_rebase(&c, src, it->rebase_to, it->rebase_fmt, true, 0);
            rc = host_run(m->h, &c);
            cmd_release(&c);
            if (rc < 0)
                return -1;
        }
        return xfer_sh(m->h, what, 0, NULL, link_script, src, staged, NULL);
    }
    strvec_pushl(&args, src, staged, NULL);
    if (it->rebase_to) {
        _cleanup_free_ char *part = xasprintf("%s.part", staged);
        struct cmd c = CMD_INIT;

        qi_rebase(&c, part, it->rebase_to, it->rebase_fmt, true, 0);
        strvec_pushv(&args, c.args.v);
        cmd_release(&c);
    }
    rc = xfer_shv(m->h, what, config_uint("COPY_TIMEOUT"), NULL, copy_script, &args);
    strvec_clear(&args);
    return rc;
}

/*
 * $1 SOURCE.snap, $2 SOURCE, $3 SOURCE's new link target ("" leaves
 * SOURCE), $4 disk.N and $5 disk.N.snap to remove at the end ("" keeps
 * them), $6 the number k of names that follow: the VM's files, whose
 * staged copies replace the final ones; every remaining argument is a
 * stale name of SOURCE.snap, removed once SOURCE is switched.
 */
static const char commit_script[] =
    "d=$1 s=$2 t=$3 disk=$4 vsnap=$5 k=$6; shift 6; i=0; "
    "while [ $i -lt $k ]; do n=$1; shift; i=$((i + 1)); "
    "if [ -f \"$d/$n.new\" ]; then if [ \"$d/$n.new\" -ef \"$d/$n\" ]; then "
    "rm -f -- \"$d/$n.new\"; else mv -fT -- \"$d/$n.new\" \"$d/$n\"; fi || exit 1; fi; "
    "[ -f \"$d/$n\" ] || { echo \"$d/$n is missing\" >&2; exit 1; }; done; "
    "sync -- \"$d\" || exit 1; "
    "if [ -n \"$t\" ] && [ \"$(readlink -- \"$s\")\" != \"$t\" ]; then "
    "rm -f -- \"$s.lnk\" && ln -s -- \"$t\" \"$s.lnk\" && mv -fT -- \"$s.lnk\" \"$s\" && "
    "sync -- \"${s%/*}\" || exit 1; fi; "
    "for n; do rm -f -- \"$d/$n\" \"$d/$n.new\" \"$d/$n.part\" \"$d/$n.lnk\" || exit 1; done; "
    "[ -z \"$disk\" ] || { rm -f -- \"$disk\" && rm -rf -- \"$vsnap\"; }";

/* NAME without a staging suffix (.new, .part, .lnk). */
static char *unstaged(const char *name)
{
    static const char *const sfx[] = { ".new", ".part", ".lnk" };

    for (size_t i = 0; i < ARRAY_SIZE(sfx); i++)
        if (ends_with(name, sfx[i]))
            return xstrndup(name, strlen(name) - strlen(sfx[i]));
    return xstrdup(name);
}

/* Names of SOURCE.snap that are not the VM's: numbered files and
 * K.current of snapshots deleted while the VM ran, and what interrupted
 * runs left for them. */
static void stale_names(const struct mvds *m, struct strvec *out)
{
    for (size_t i = 0; i < m->img_dir.n; i++) {
        _cleanup_free_ char *base = unstaged(m->img_dir.e[i].name);
        bool skip = false;
        int id;

        if (parse_id(base, &id) < 0 && !is_current_name(base))
            continue;
        for (size_t j = 0; j < m->nitems && !skip; j++)
            skip = streq(m->items[j].vm->name, base);
        for (size_t j = 0; j < out->nr && !skip; j++)
            skip = streq(out->v[j], base);
        if (!skip)
            strvec_push(out, base);
    }
}

static int commit(struct mvds *m, const char *target, bool cleanup)
{
    _cleanup_free_ char *what = xasprintf("publishing %s", m->img.snap_dir);
    struct strvec args = STRVEC_INIT, stale = STRVEC_INIT;
    int rc;

    stale_names(m, &stale);
    strvec_pushl(&args, m->img.snap_dir, m->img.disk, target ? target : "",
                 cleanup ? m->disk.disk : "", cleanup ? m->disk.snap_dir : "", NULL);
    strvec_pushf(&args, "%zu", m->nitems);
    for (size_t i = 0; i < m->nitems; i++)
        strvec_push(&args, m->items[i].vm->name);
    strvec_pushv(&args, stale.v);
    if (stale.nr)
        log_info("removing %zu file(s) of %s that are no longer snapshots of the disk", stale.nr,
                 m->img.snap_dir);
    rc = xfer_shv(m->h, what, 0, NULL, commit_script, &args);
    strvec_clear(&args);
    strvec_clear(&stale);
    return rc;
}

static int move_files(struct mvds *m, bool chain)
{
    for (size_t i = 0; i < m->nitems; i++) {
        struct item *it = &m->items[i];

        if (it->id < 0 ? plan_current(m, it) < 0 : chain && plan_backing(m, it) < 0)
            return -1;
    }
    if (prepare(m, chain) < 0)
        return -1;
    log_info("moving %zu file(s) of %s:%s into %s (%s)", m->nitems, host_name(m->h),
             m->disk.snap_dir, m->img.snap_dir, m->same_fs ? "same file system: linked" : "copied");
    for (size_t i = 0; i < m->nitems; i++)
        if (stage(m, &m->items[i]) < 0)
            return -1;
    return 0;
}

/* $1 disk.N (raw), $2 SOURCE, $3 disk.N.snap: disk.N becomes SOURCE (a
 * hard link renamed over it, or a copy), then the VM's copy goes. */
static const char raw_script[] =
    "s=$1 d=$2 p=$2.part; rm -f -- \"$d.lnk\"; "
    "if [ \"$s\" -ef \"$d\" ]; then :; "
    "elif ln -- \"$s\" \"$d.lnk\" 2>/dev/null; then mv -fT -- \"$d.lnk\" \"$d\" || exit 1; "
    "else "
    "a=$(stat -c '%s:%.9Y' -- \"$s\") || exit 1; b=$(stat -c '%s:%.9Y' -- \"$d\" 2>/dev/null); "
    "if [ -L \"$d\" ] || [ \"$a\" != \"$b\" ]; then "
    "rm -f -- \"$p\" && cp --sparse=always -- \"$s\" \"$p\" && touch -r \"$s\" -- \"$p\" && "
    "sync -- \"$p\" && mv -fT -- \"$p\" \"$d\" || { rc=$?; rm -f -- \"$p\"; exit $rc; }; fi; fi; "
    "sync -- \"${d%/*}\" && rm -f -- \"$s\" && rm -rf -- \"$3\"";

static int move_raw(struct mvds *m)
{
    _cleanup_free_ char *what = xasprintf("moving %s to %s", m->disk.disk, m->img.disk);

    if (m->nitems && (move_files(m, false) < 0 || commit(m, NULL, false) < 0))
        return -1;
    log_info("moving %s:%s to %s", host_name(m->h), m->disk.disk, m->img.disk);
    return xfer_sh(m->h, what, config_uint("COPY_TIMEOUT"), NULL, raw_script, m->disk.disk,
                   m->img.disk, m->disk.snap_dir, NULL);
}

static int move_chain(struct mvds *m, int top)
{
    _cleanup_free_ char *target = layout_snap_rel(&m->img, top);
    int highest = -1;

    for (size_t i = 0; i < m->nitems; i++)
        if (m->items[i].id > highest)
            highest = m->items[i].id;
    if (highest != top)
        return fail("disk.%d points to snapshot file %d but %s/%d is newer: the layout is "
                    "inconsistent, refusing to guess which is the disk",
                    m->vp.disk_id, top, m->disk.snap_dir, highest);
    if (move_files(m, true) < 0 || commit(m, target, true) < 0)
        return -1;
    log_info("%s is back in the image datastore: %s -> %s", m->disk.disk, m->img.disk, target);
    return 0;
}

/* disk.N is gone but disk.N.snap is not: the end of an earlier run (the
 * clean-up removes disk.N first) when SOURCE links into SOURCE.snap and the
 * image holds every file of the VM's copy. */
static int finish_cleanup(struct mvds *m)
{
    _cleanup_free_ char *what = xasprintf("removing %s", m->disk.snap_dir);

    if (m->src_e.kind == 'L') {
        /* the clean-up of a qcow2 disk: SOURCE -> <name>.snap/<top> */
        _cleanup_free_ char *t = link_target(m->img.dir, m->src_e.info);
        _cleanup_free_ char *tdir = path_dirname(t);
        const struct entry *top = find(&m->img_dir, path_basename(t));

        if (!streq(tdir, m->img.snap_dir) || !top || top->kind != 'F')
            goto refuse;
    } else if (m->src_e.kind != 'F') {
        goto refuse;
    }
    for (size_t i = 0; i < m->nitems; i++) {
        const struct entry *f = find(&m->img_dir, m->items[i].vm->name);

        if (m->items[i].id < 0)
            continue;
        if (!f || f->kind != 'F' ||
            !(xfer_same_file(f->info, m->items[i].vm->info) ||
              xfer_same_data(f->info, m->items[i].vm->info)))
            goto refuse;
    }
    log_info("the disk is back in %s already; removing the rest of %s", m->img.snap_dir,
             m->disk.snap_dir);
    return xfer_sh(m->h, what, 0, NULL, "rm -rf -- \"$1\"", m->disk.snap_dir, NULL);
refuse:
    return fail("%s is missing on %s but %s holds files that are not in image %s: refusing "
                "to guess",
                m->disk.disk, host_name(m->h), m->disk.snap_dir, m->source);
}

/* Moves the VM's copy of the persistent disk back into the image. */
/* The VM's copy is not on HOST but on the front-end: recover --retry of an
 * epilog that ran there (terminate of an undeployed or stopped VM) names
 * the VM's last host instead (trap 18). The front-end takes over then. */
static bool on_frontend_instead(struct mvds *m)
{
    _cleanup_free_ char *snap = xasprintf("%s.snap", m->vp.path);
    struct stat st;

    if (host_is_local(m->h) || m->disk_e.kind != 'N' || m->vm_dir.n ||
        (lstat(m->vp.path, &st) < 0 && lstat(snap, &st) < 0))
        return false;
    log_info("disk.%d is not on %s but on the front-end: moving it from there", m->vp.disk_id,
             m->vp.host);
    m->h = tm_host(m->t, "localhost");
    free(m->disk_e.info);
    free(m->src_e.info);
    memset(&m->disk_e, 0, sizeof(m->disk_e));
    memset(&m->src_e, 0, sizeof(m->src_e));
    listing_release(&m->vm_dir);
    listing_release(&m->img_dir);
    return true;
}

static int mvds_move_back(struct mvds *m)
{
    _cleanup_free_ char *target = NULL, *tdir = NULL;
    int top;

    if (inspect(m) < 0)
        return -1;
    if (on_frontend_instead(m) && (!m->h || inspect(m) < 0))
        return -1;
    if (collect(m) < 0)
        return -1;
    switch (m->disk_e.kind) {
    case 'F':
        return move_raw(m);
    case 'N':
        if (numbered(m))
            return finish_cleanup(m);
        goto moved;
    case 'L':
        break;
    default:
        return fail("%s on %s is neither a file nor a link", m->disk.disk, host_name(m->h));
    }
    target = link_target(m->vp.vm_dir, m->disk_e.info);
    tdir = path_dirname(target);
    if (streq(tdir, m->img.snap_dir) || streq(target, m->img.disk)) {
        if (numbered(m))
            return fail("%s links into the image datastore but %s holds snapshot files: "
                        "refusing to guess which is the disk",
                        m->disk.disk, m->disk.snap_dir);
        log_info("%s links to %s: the disk is in the image datastore already", m->disk.disk,
                 target);
        return 0;
    }
    if (!streq(tdir, m->disk.snap_dir) || parse_id(path_basename(target), &top) < 0)
        return fail("%s points to %s, outside %s: refusing to move it", m->disk.disk,
                    m->disk_e.info, m->disk.snap_dir);
    if (!numbered(m))
        goto moved; /* OpenNebula's mvds.ssh leaves disk.N dangling */
    if (!have_id(m, top))
        return fail("%s points to %s, which does not exist", m->disk.disk, target);
    return move_chain(m, top);
moved:
    if (m->src_e.kind == 'N')
        return fail("neither the VM's copy %s nor the image %s exists on %s", m->disk.disk,
                    m->source, host_name(m->h));
    log_info("%s holds no copy of the disk: it is in image %s already", m->vp.vm_dir, m->source);
    if (m->disk_e.kind != 'L' && !m->vm_dir.n)
        return 0;
    /* what is left holds no data: a dangling disk.N, links, leftovers */
    return xfer_sh(m->h, "removing what is left of the VM's copy", 0, NULL,
                   "rm -f -- \"$1\" && rm -rf -- \"$2\"", m->disk.disk, m->disk.snap_dir, NULL);
}

static int mvds_run(struct mvds *m, struct action_ctx *ctx)
{
    struct hostpath src;
    struct lock lk = LOCK_INIT;
    int ds_id, rc;

    if (prov_ds_id(ctx->argv[3], &ds_id) < 0 ||
        vm_path_parse(ctx->argv[0], m->t->vmid, "disk", &m->vp) < 0)
        return -1;
    if (!m->vp.host || m->vp.kind != VM_PATH_DISK)
        return fail("the disk '%s' is not of the form host:<datastores>/<ds id>/%d/disk.<n>",
                    ctx->argv[0], m->t->vmid);
    if (prov_source(ctx->argv[1], ds_id, &src) < 0)
        return -1;
    if (src.host) {
        hostpath_release(&src);
        return fail("the image '%s' has a host part: oned writes SOURCE as a bare path",
                    ctx->argv[1]);
    }
    m->source = TAKE_PTR(src.path);
    hostpath_release(&src);
    layout_init(&m->disk, m->vp.path);
    layout_init(&m->img, m->source);
    m->h = tm_host(m->t, m->vp.host);
    if (!m->h || deferred_save(m->t, &m->vp) < 0)
        return -1;
    if (!m->t->ssh_mode)
        return check_shared(m);
    if (lock_take_path(&lk, m->source, config_uint("LOCK_TIMEOUT")) < 0)
        return -1;
    rc = mvds_move_back(m);
    lock_release(&lk);
    return rc;
}

int tm_mvds(struct action_ctx *ctx)
{
    struct tm t;
    struct mvds m = { .t = &t };
    int rc;

    if (tm_start(&t, ctx) < 0)
        return -1;
    rc = mvds_run(&m, ctx);
    mvds_release(&m);
    tm_end(&t);
    return rc;
}
