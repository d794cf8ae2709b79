/*
 * ln     fe:SOURCE HOST:VM_DIR/disk.N VM_ID DS_ID   shared system datastore
 * ln.ssh fe:SOURCE HOST:VM_DIR/disk.N VM_ID DS_ID   local system datastore
 *
 * A persistent (or CD-ROM) image becomes the VM's disk N (prolog, hot
 * attach; protocol §2.3 ln, ln.ssh). DS_ID is the image's datastore. Raw
 * or not is DISK[DISK_ID=N]/FORMAT from oned (stock guesses from the file,
 * which for a raw disk is whatever header its guest wrote; the header is
 * read only when the VM has no FORMAT). The result is OpenNebula's qcow2
 * layout exactly, so a VM moves freely between the stock driver and qcow2c:
 *  - ln: SOURCE is rewritten to HOST's datastore root, as for clone.
 *    raw: disk.N -> SOURCE. Otherwise the chain stays in the image
 *    datastore: SOURCE.snap/ with its self link <name>.snap -> .,
 *    SOURCE.snap/0 -> SOURCE when it holds no numbered file yet, and
 *    disk.N -> SOURCE.snap/<highest> (absolute); a stale disk.N.snap goes.
 *    .monitor is left alone (as stock).
 *  - ln.ssh: the disk is copied into the local system datastore; .monitor
 *    says "ssh". Every regular file of SOURCE.snap/ (symlinks followed, so
 *    0 -> SOURCE gives a copy of SOURCE) is copied into disk.N.snap/; for a
 *    non-raw image the copies' backing names become disk.N.snap/<name of
 *    the old backing file> (relative, qemu-img rebase -u), the self link
 *    disk.N.snap/disk.N.snap -> . is made, SOURCE is copied to
 *    disk.N.snap/0 when there is no numbered file, and disk.N ->
 *    disk.N.snap/<highest>. A raw image is copied to disk.N.
 * Every link is replaced by rename and every copy is made beside its name
 * (rebased there) and renamed with the source's time: a re-run keeps the
 * complete copies (same time and size) and redoes the rest; entries of
 * disk.N.snap that are not the image's (a previous attempt's leftovers) are
 * removed first. Unlike stock, ln.ssh reads the snapshot directory where the
 * image is readable, not always on the front-end.
 * Refused: as clone (destination disk.N of this VM with a host, the image in
 * <datastores>/DS_ID/).
 */
#include "tm_actions.h"

#include <dirent.h>

#include "cleanup.h"
#include "layout.h"
#include "log.h"
#include "num.h"
#include "provision.h"
#include "qemu_img.h"

struct ln {
    struct tm *t;
    struct vm_path dst;
    struct hostpath src;
    char *src_on_host;
    bool fe_mounted; /* the image datastore is readable on the front-end */
    struct host *h;
    bool chain; /* not raw: the snapshot layout */
};

static void ln_release(struct ln *l)
{
    vm_path_release(&l->dst);
    hostpath_release(&l->src);
    free(l->src_on_host);
}

/* ---- ln: the chain stays in the image datastore ---- */

static int self_link(struct host *h, const struct layout *l)
{
    struct rstat st;
    bool ok;

    if (host_stat(h, l->self, &st) < 0)
        return -1;
    ok = st.kind == 'L' && streq(st.target, ".");
    rstat_release(&st);
    return ok ? 0 : prov_symlink(h, ".", l->self);
}

static int ln_shared(struct ln *l)
{
    struct layout img;
    _cleanup_free_ int *ids = NULL;
    _cleanup_free_ char *top = NULL;
    _cleanup_free_ char *stale = xasprintf("%s.snap", l->dst.path);
    size_t n;
    int rc = -1;

    if (!l->chain) {
        log_info("linking %s:%s to %s", host_name(l->h), l->dst.path, l->src_on_host);
        if (prov_prepare(l->h, &l->dst, PROV_MONITOR_KEEP, NULL) < 0)
            return -1;
        return prov_symlink(l->h, l->src_on_host, l->dst.path);
    }
    layout_init(&img, l->src_on_host);
    if (prov_prepare(l->h, &l->dst, PROV_MONITOR_KEEP, img.snap_dir) < 0 ||
        self_link(l->h, &img) < 0 || layout_ids(l->h, &img, &ids, &n) < 0)
        goto out;
    if (n == 0) {
        _cleanup_free_ char *zero = layout_snap(&img, 0);

        if (prov_symlink(l->h, l->src_on_host, zero) < 0)
            goto out;
    }
    top = layout_snap(&img, n ? ids[n - 1] : 0);
    log_info("linking %s:%s to %s", host_name(l->h), l->dst.path, top);
    if (prov_symlink(l->h, top, l->dst.path) < 0 || host_rm_rf(l->h, stale) < 0)
        goto out;
    rc = 0;
out:
    layout_release(&img);
    return rc;
}

/* ---- ln.ssh: a copy of the chain in the system datastore ---- */

/* Regular files of a directory (symlinks followed), without dot files: what
 * `ls` + `[ -f ]` see in stock ln.ssh. A missing directory is empty. */
static int list_local(const char *dir, struct strvec *names)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return errno == ENOENT ? 0 : fail_errno("cannot list '%s'", dir);
    while ((de = readdir(d))) {
        _cleanup_free_ char *p = NULL;
        struct stat st;

        if (de->d_name[0] == '.')
            continue;
        p = path_join(dir, de->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            strvec_push(names, de->d_name);
    }
    closedir(d);
    return 0;
}

static const char list_script[] =
    "cd -- \"$1\" 2>/dev/null || exit 0; "
    "for f in *; do if [ -f \"$f\" ]; then printf '%s\\0' \"$f\"; fi; done; exit 0";

static int list_remote(struct host *h, const char *dir, struct strvec *names)
{
    struct cmd c = CMD_INIT;
    int rc;

    strvec_pushl(&c.args, "sh", "-c", list_script, "sh", dir, NULL);
    rc = host_run(h, &c);
    for (size_t off = 0; rc == 0 && off < c.out.len;) {
        const char *name = c.out.buf + off;

        strvec_push(names, name);
        off += strnlen(name, c.out.len - off) + 1;
    }
    cmd_release(&c);
    return rc;
}

/* Numbered files first, in ascending order (a file's backing file is an
 * older snapshot), then the others (K.current...) by name. */
static int cmp_names(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int i, j;
    bool nx = parse_id(x, &i) == 0, ny = parse_id(y, &j) == 0;

    if (nx && ny)
        return (i > j) - (i < j);
    if (nx != ny)
        return nx ? -1 : 1;
    return strcmp(x, y);
}

/* The backing name a copy gets: disk.N.snap/<name of the old backing file>;
 * NULL when the file has none (or is not qcow2). */
static int new_backing(struct ln *l, const char *name, char **backing, char **fmt)
{
    _cleanup_free_ char *rel = xasprintf("%s.snap/%s", l->src.path, name);
    _cleanup_free_ char *on_host = xasprintf("%s.snap/%s", l->src_on_host, name);
    struct image_info ii;
    int rc;

    *backing = *fmt = NULL;
    rc = l->fe_mounted ? image_probe_path(rel, &ii) : host_probe_image(l->h, on_host, &ii);
    if (rc < 0)
        return -1;
    if (streq(ii.format, "qcow2") && ii.backing_file) {
        *backing =
            xasprintf("%s.snap/%s", path_basename(l->dst.path), path_basename(ii.backing_file));
        *fmt = xstrdup(ii.backing_format ? ii.backing_format : "qcow2");
    }
    image_info_release(&ii);
    return 0;
}

static int copy_one(struct ln *l, const char *src, const char *dst, const char *backing,
                    const char *fmt)
{
    _cleanup_free_ char *part = NULL;
    struct cmd c = CMD_INIT;
    int rc;

    if (prov_copy_start(l->h, src, dst, 0, &part) < 0)
        return -1;
    if (!part)
        return 0;
    if (backing) {
        qi_rebase(&c, part, backing, fmt, true, 0);
        rc = host_run(l->h, &c);
        cmd_release(&c);
        if (rc < 0)
            return -1;
    }
    return prov_copy_finish(l->h, src, part, dst);
}

/* Removes what disk.N.snap holds besides the image's files and its self
 * link: leftovers of an earlier attempt or of another disk N. */
static int drop_stale(struct ln *l, const struct layout *d, const struct strvec *keep)
{
    struct strvec have = STRVEC_INIT, rm = STRVEC_INIT;
    int rc;

    if (host_list(l->h, d->snap_dir, &have) < 0)
        return -1;
    for (size_t i = 0; i < have.nr; i++) {
        bool wanted = streq(have.v[i], path_basename(d->self));

        for (size_t j = 0; j < keep->nr && !wanted; j++)
            wanted = streq(have.v[i], keep->v[j]);
        if (!wanted)
            strvec_pushf(&rm, "%s/%s", d->snap_dir, have.v[i]);
    }
    rc = 0;
    if (rm.nr) {
        struct cmd c = CMD_INIT;

        strvec_pushl(&c.args, "rm", "-rf", "--", NULL);
        strvec_pushv(&c.args, rm.v);
        rc = host_run(l->h, &c);
        cmd_release(&c);
    }
    strvec_clear(&have);
    strvec_clear(&rm);
    return rc;
}

static bool has_numbered(const struct strvec *names, int *top)
{
    bool any = false;

    for (size_t i = 0; i < names->nr; i++) {
        int id;

        if (parse_id(names->v[i], &id) == 0 && (!any || id > *top)) {
            *top = id;
            any = true;
        }
    }
    return any;
}

static int ln_ssh(struct ln *l)
{
    struct layout d;
    struct strvec names = STRVEC_INIT, keep = STRVEC_INIT;
    _cleanup_free_ char *fe_snap = xasprintf("%s.snap", l->src.path);
    _cleanup_free_ char *host_snap = xasprintf("%s.snap", l->src_on_host);
    bool chain = l->chain;
    bool numbered;
    int top = 0, rc = -1;

    layout_init(&d, l->dst.path);
    if ((l->fe_mounted ? list_local(fe_snap, &names) : list_remote(l->h, host_snap, &names)) < 0)
        goto out;
    qsort(names.v, names.nr, sizeof(*names.v), cmp_names);
    numbered = has_numbered(&names, &top);
    strvec_pushv(&keep, names.v);
    if (chain && !numbered)
        strvec_push(&keep, "0");
    log_info("copying %s (%zu snapshot files) into %s:%s", l->src_on_host, names.nr,
             host_name(l->h), l->dst.path);
    if (prov_prepare(l->h, &l->dst, PROV_MONITOR_SSH, chain || names.nr ? d.snap_dir : NULL) < 0)
        goto out;
    if ((chain || names.nr) && drop_stale(l, &d, &keep) < 0)
        goto out;
    if (chain && self_link(l->h, &d) < 0)
        goto out;
    for (size_t i = 0; i < names.nr; i++) {
        _cleanup_free_ char *from = xasprintf("%s/%s", host_snap, names.v[i]);
        _cleanup_free_ char *to = xasprintf("%s/%s", d.snap_dir, names.v[i]);
        _cleanup_free_ char *backing = NULL, *fmt = NULL;

        if (chain && new_backing(l, names.v[i], &backing, &fmt) < 0)
            goto out;
        if (copy_one(l, from, to, backing, fmt) < 0)
            goto out;
    }
    if (!chain) {
        rc = copy_one(l, l->src_on_host, l->dst.path, NULL, NULL);
        goto out;
    }
    if (!numbered) {
        _cleanup_free_ char *zero = layout_snap(&d, 0);

        if (copy_one(l, l->src_on_host, zero, NULL, NULL) < 0)
            goto out;
    }
    {
        _cleanup_free_ char *rel = layout_snap_rel(&d, top);

        rc = prov_symlink(l->h, rel, l->dst.path);
    }
out:
    strvec_clear(&names);
    strvec_clear(&keep);
    layout_release(&d);
    return rc;
}

/* Checked before anything changes: a link to nothing helps no one. */
static bool source_missing(struct ln *l)
{
    struct rstat st;
    char kind;

    if (host_stat(l->h, l->src_on_host, &st) < 0)
        return true;
    kind = st.kind;
    rstat_release(&st);
    if (kind == 'N')
        fail("the image %s does not exist on %s", l->src_on_host, host_name(l->h));
    return kind == 'N';
}

static int ln_run(struct ln *l, struct action_ctx *ctx)
{
    _cleanup_free_ char *format = NULL;
    struct image_info ii = { 0 };
    int ds_id;

    if (prov_ds_id(ctx->argv[3], &ds_id) < 0 || prov_source(ctx->argv[0], ds_id, &l->src) < 0 ||
        prov_disk_arg(ctx->argv[1], l->t->vmid, &l->dst) < 0)
        return -1;
    l->src_on_host =
        l->t->ssh_mode ? xstrdup(l->src.path) : image_path_on_host(&l->dst, l->src.path);
    l->fe_mounted = access(l->src.path, F_OK) == 0;
    if (tm_disk_attr(l->t, l->dst.disk_id, "FORMAT", &format) < 0)
        return -1;
    l->h = tm_host(l->t, l->dst.host);
    if (!l->h || (!l->fe_mounted && source_missing(l)))
        return -1;
    if (!str_empty(format))
        l->chain = !streq(format, "raw");
    else if (prov_probe_source(l->h, l->src.path, l->src_on_host, &ii) < 0)
        return -1;
    else
        l->chain = !streq(ii.format, "raw");
    image_info_release(&ii);
    return l->t->ssh_mode ? ln_ssh(l) : ln_shared(l);
}

int tm_ln(struct action_ctx *ctx)
{
    struct tm t;
    struct ln l = { .t = &t };
    int rc;

    if (tm_start(&t, ctx) < 0)
        return -1;
    rc = ln_run(&l, ctx);
    ln_release(&l);
    tm_end(&t);
    return rc;
}
