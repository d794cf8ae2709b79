/* snapshot.c - the snapshot directory of a disk, read and changed in batches;
 * see snapshot.h. */
#include "snapshot.h"

#include <dirent.h>

#include "b64.h"
#include "cleanup.h"
#include "config.h"
#include "hostpath.h"
#include "log.h"
#include "num.h"
#include "qemu_img.h"
#include "xml.h"

#define HEAD_BYTES 4096u
/* Seconds a virsh call that only asks libvirt or the guest agent may take. */
#define VIRSH_QUICK 60u

/* ---- opening ---- */

int snap_open(struct snap_disk *d, struct tm *t, struct action_ctx *ctx)
{
    _cleanup_free_ char *id = NULL, *clone = NULL, *source = NULL, *chain = NULL;
    int ds_id, n;

    memset(d, 0, sizeof(*d));
    d->t = t;
    d->link_kind = 'N';
    d->link_id = -1;
    if (vm_path_parse(ctx->argv[0], t->vmid, "disk", &d->vp) < 0)
        return -1;
    if (!d->vp.host || d->vp.kind != VM_PATH_DISK)
        return fail("the disk '%s' is not of the form host:<datastores>/<ds id>/%d/disk.<n>",
                    ctx->argv[0], t->vmid);
    if (parse_id(ctx->argv[1], &d->snap_id) < 0)
        return fail("'%s' is not a valid snapshot id", ctx->argv[1]);
    if (parse_id(ctx->argv[3], &ds_id) < 0)
        return fail("'%s' is not a valid datastore id", ctx->argv[3]);
    n = d->vp.disk_id;
    if (tm_disk_attr(t, n, "DISK_ID", &id) < 0)
        return -1;
    if (!id)
        return fail("VM %d has no disk %d", t->vmid, n);
    if (tm_disk_attr(t, n, "FORMAT", &d->format) < 0 || tm_disk_attr(t, n, "CLONE", &clone) < 0 ||
        tm_disk_attr(t, n, "SOURCE", &source) < 0)
        return -1;
    if (str_empty(d->format))
        return fail("disk %d of VM %d has no FORMAT", n, t->vmid);
    d->qcow2 = streq(d->format, "qcow2");
    /* Where stock keeps the chain: beside a persistent image in shared mode,
     * in the system datastore otherwise. */
    d->image_ds = !t->ssh_mode && !is_yes(clone);
    if (d->image_ds) {
        if (str_empty(source))
            return fail("disk %d of VM %d has no image (SOURCE) to keep its snapshots beside",
                        n, t->vmid);
        chain = image_path_on_host(&d->vp, source);
    } else {
        chain = xstrdup(d->vp.path);
    }
    layout_init(&d->l, chain);
    d->h = tm_host(t, d->vp.host);
    return d->h ? 0 : -1;
}

static void file_release(struct snap_file *f)
{
    free(f->name);
    free(f->target);
    free(f->current);
    free(f->head);
    image_info_release(&f->ii);
}

static void scan_release(struct snap_disk *d)
{
    for (size_t i = 0; i < d->nf; i++)
        file_release(&d->f[i]);
    free(d->f);
    d->f = NULL;
    d->nf = 0;
    free(d->link_target);
    free(d->link_path);
    d->link_target = d->link_path = NULL;
    d->link_kind = 'N';
    d->link_id = -1;
    d->self_link = false;
}

void snap_close(struct snap_disk *d)
{
    scan_release(d);
    vm_path_release(&d->vp);
    layout_release(&d->l);
    free(d->format);
    memset(d, 0, sizeof(*d));
}

/* ---- names ---- */

char *snap_name(const struct snap_disk *d, int id)
{
    return d->image_ds ? layout_snap(&d->l, id) : layout_snap_rel(&d->l, id);
}

char *snap_path(const struct snap_disk *d, int id)
{
    return layout_snap(&d->l, id);
}

char *snap_current_path(const struct snap_disk *d, int id)
{
    return xasprintf("%s/%d.current", d->l.snap_dir, id);
}

/* The last two components of a normalised path ("105/<hash>.snap"). */
static const char *tail2(const char *p)
{
    const char *last = strrchr(p, '/');

    if (!last || last == p)
        return p;
    for (const char *q = last - 1; q > p; q--)
        if (*q == '/')
            return q + 1;
    return p + 1;
}

int snap_path_id(const struct snap_disk *d, const char *base_dir, const char *path)
{
    _cleanup_free_ char *joined = path[0] == '/' ? xstrdup(path) : path_join(base_dir, path);
    _cleanup_free_ char *abs = path_normalize(joined);
    _cleanup_free_ char *self = xasprintf("%s/%s.snap/", d->l.snap_dir, d->l.name);
    _cleanup_free_ char *dir = NULL;
    int id;

    /* disk.N.snap/disk.N.snap -> . : QEMU resolves a relative backing name
     * from the directory of the file naming it, which goes through it */
    while (starts_with(abs, self)) {
        char *shorter = xasprintf("%s/%s", d->l.snap_dir, abs + strlen(self));

        free(abs);
        abs = shorter;
    }
    dir = path_dirname(abs);
    if ((streq(dir, d->l.snap_dir) ||
         (d->image_ds && streq(tail2(dir), tail2(d->l.snap_dir)))) &&
        parse_id(path_basename(abs), &id) == 0)
        return id;
    /* SOURCE.snap/0 -> SOURCE: a backing name that says SOURCE is file 0 */
    for (size_t i = 0; i < d->nf; i++) {
        const struct snap_file *f = &d->f[i];

        if (f->id >= 0 && f->kind == 'L' && f->target[0] == '/') {
            _cleanup_free_ char *t = path_normalize(f->target);

            if (streq(t, abs))
                return f->id;
        }
    }
    return -1;
}

/* ---- scanning ---- */

/* For the path in $2, named $1: "name\0kind\0target\0base64 head\0". */
static const char scan_script[] =
    "one() { t=; h=; "
    "if [ -L \"$2\" ]; then k=L; t=$(readlink -- \"$2\") || return 1; "
    "elif [ -d \"$2\" ]; then k=D; elif [ -f \"$2\" ]; then k=F; "
    "elif [ -e \"$2\" ]; then k=O; else k=N; fi; "
    "if [ ! -d \"$2\" ] && [ -f \"$2\" ]; then "
    "h=$(head -c 4096 -- \"$2\" | base64 -w 0) || return 1; fi; "
    "printf '%s\\0%s\\0%s\\0%s\\0' \"$1\" \"$k\" \"$t\" \"$h\"; }; "
    "one . \"$2\" || exit 1; [ -d \"$1\" ] || exit 0; "
    "for p in \"$1\"/* \"$1\"/.qcow2c-*; do [ -e \"$p\" ] || [ -L \"$p\" ] || continue; "
    "one \"${p##*/}\" \"$p\" || exit 1; done";

struct raw_entry {
    const char *name;
    char kind;
    const char *target;
    const char *head;
    size_t head_len;
};

/* Takes one entry into d->f (or into the link fields for "."). */
static void take_entry(struct snap_disk *d, const struct raw_entry *e, size_t *alloc)
{
    struct snap_file *f;

    if (streq(e->name, ".")) {
        d->link_kind = e->kind;
        if (e->kind == 'L')
            d->link_target = xstrdup(e->target);
        return;
    }
    ALLOC_GROW(d->f, d->nf + 1, *alloc);
    f = &d->f[d->nf++];
    memset(f, 0, sizeof(*f));
    f->name = xstrdup(e->name);
    f->kind = e->kind;
    f->target = xstrdup(e->target ? e->target : "");
    f->backing = -1;
    if (parse_id(f->name, &f->id) < 0)
        f->id = -1;
    if (!e->head)
        return;
    f->head = xmalloc(e->head_len + 1);
    memcpy(f->head, e->head, e->head_len);
    f->head[e->head_len] = '\0';
    f->head_len = e->head_len;
    if (ends_with(f->name, ".current") || starts_with(f->name, SNAP_NOTE_PREFIX)) {
        struct sbuf s = SBUF_INIT;

        sbuf_add(&s, e->head, e->head_len);
        sbuf_rtrim(&s);
        f->current = sbuf_detach(&s);
    } else if (f->id >= 0) {
        if (image_probe_buf(e->head, e->head_len, 0, &f->ii) == 0)
            f->image = true;
        else
            fail_reset(); /* half-made or foreign: not an image */
    }
}

static int scan_local(struct snap_disk *d)
{
    const char *paths[2] = { d->vp.path, NULL };
    size_t alloc = 0;
    DIR *dir;
    struct dirent *de;
    int rc = 0;

    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        struct strvec names = STRVEC_INIT;

        if (pass == 0) {
            strvec_push(&names, ".");
        } else {
            if (!(dir = opendir(d->l.snap_dir))) {
                if (errno != ENOENT)
                    rc = fail_errno("cannot list '%s'", d->l.snap_dir);
                break;
            }
            while ((de = readdir(dir)))
                if (de->d_name[0] != '.' || starts_with(de->d_name, SNAP_NOTE_PREFIX))
                    strvec_push(&names, de->d_name);
            closedir(dir);
        }
        for (size_t i = 0; i < names.nr && rc == 0; i++) {
            _cleanup_free_ char *p = pass ? path_join(d->l.snap_dir, names.v[i])
                                          : xstrdup(paths[0]);
            struct raw_entry e = { .name = names.v[i], .kind = 'N' };
            char target[PATH_MAX];
            char head[HEAD_BYTES];
            struct stat sb;

            if (lstat(p, &sb) < 0) {
                if (errno != ENOENT && errno != ENOTDIR)
                    rc = fail_errno("cannot examine '%s'", p);
            } else if (S_ISLNK(sb.st_mode)) {
                ssize_t n = readlink(p, target, sizeof(target) - 1);

                if (n < 0) {
                    rc = fail_errno("cannot read link '%s'", p);
                    break;
                }
                target[n] = '\0';
                e.kind = 'L';
                e.target = target;
            } else {
                e.kind = S_ISDIR(sb.st_mode) ? 'D' : S_ISREG(sb.st_mode) ? 'F' : 'O';
            }
            if (rc == 0 && stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
                _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
                ssize_t n = fd < 0 ? -1 : read(fd, head, sizeof(head));

                if (n >= 0) {
                    e.head = head;
                    e.head_len = (size_t)n;
                }
            }
            if (rc == 0)
                take_entry(d, &e, &alloc);
        }
        strvec_clear(&names);
    }
    return rc;
}

static int scan_remote(struct snap_disk *d)
{
    struct cmd c = CMD_INIT;
    size_t alloc = 0;
    int rc;

    strvec_pushl(&c.args, "sh", "-c", scan_script, "sh", d->l.snap_dir, d->vp.path, NULL);
    c.what = "reading the snapshot directory";
    c.out_max = 16u << 20;
    rc = host_run(d->h, &c);
    for (size_t off = 0; rc == 0 && off < c.out.len;) {
        const char *field[4];
        struct sbuf head = SBUF_INIT;
        struct raw_entry e;

        for (int i = 0; i < 4; i++) {
            size_t n = off < c.out.len ? strnlen(c.out.buf + off, c.out.len - off) : 0;

            if (off + n >= c.out.len) {
                rc = fail("unexpected answer from %s while reading %s", host_name(d->h),
                          d->l.snap_dir);
                break;
            }
            field[i] = c.out.buf + off;
            off += n + 1;
        }
        if (rc < 0)
            break;
        if (*field[3] && b64_decode(field[3], strlen(field[3]), &head) < 0) {
            rc = fail_context("the header of %s/%s", d->l.snap_dir, field[0]);
            break;
        }
        e = (struct raw_entry){ .name = field[0], .kind = field[1][0], .target = field[2],
                                .head = *field[3] ? head.buf : NULL, .head_len = head.len };
        take_entry(d, &e, &alloc);
        sbuf_release(&head);
    }
    cmd_release(&c);
    return rc;
}

int snap_scan(struct snap_disk *d)
{
    int rc;

    scan_release(d);
    rc = host_is_local(d->h) ? scan_local(d) : scan_remote(d);
    if (rc < 0)
        return fail_context("cannot read the snapshots of disk.%d", d->vp.disk_id);
    /* A header longer than what was read (a backing name far in the first
     * cluster): ask for the usual 64 KiB. */
    for (size_t i = 0; i < d->nf; i++) {
        struct snap_file *f = &d->f[i];

        if (f->id >= 0 && !f->image && f->head_len == HEAD_BYTES) {
            _cleanup_free_ char *p = path_join(d->l.snap_dir, f->name);

            if (host_probe_image(d->h, p, &f->ii) == 0)
                f->image = true;
            else
                fail_reset();
        }
    }
    for (size_t i = 0; i < d->nf; i++) {
        struct snap_file *f = &d->f[i];

        if (f->image && f->ii.backing_file)
            f->backing = snap_path_id(d, d->l.snap_dir, f->ii.backing_file);
        if (f->kind == 'L' && streq(f->name, path_basename(d->l.self)) && streq(f->target, "."))
            d->self_link = true;
    }
    if (d->link_kind == 'L') {
        _cleanup_free_ char *j = d->link_target[0] == '/' ? xstrdup(d->link_target)
                                                          : path_join(d->vp.vm_dir, d->link_target);

        d->link_path = path_normalize(j);
        d->link_id = snap_path_id(d, d->vp.vm_dir, d->link_target);
    }
    return 0;
}

struct snap_file *snap_get(const struct snap_disk *d, int id)
{
    for (size_t i = 0; i < d->nf; i++)
        if (d->f[i].id == id && id >= 0)
            return &d->f[i];
    return NULL;
}

struct snap_file *snap_get_named(const struct snap_disk *d, const char *name)
{
    for (size_t i = 0; i < d->nf; i++)
        if (streq(d->f[i].name, name))
            return &d->f[i];
    return NULL;
}

size_t snap_children(const struct snap_disk *d, int id, int *out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < d->nf; i++) {
        const struct snap_file *f = &d->f[i];

        if (f->id >= 0 && f->image && f->backing == id && f->id != id) {
            if (n < max)
                out[n] = f->id;
            n++;
        }
    }
    return n;
}

int snap_holder(const struct snap_disk *d, int id, bool *via_current)
{
    _cleanup_free_ char *cname = xasprintf("%d.current", id);
    const struct snap_file *cur = snap_get_named(d, cname);
    const struct snap_file *f;
    int hid = id;

    *via_current = false;
    if (cur && cur->current) {
        *via_current = true;
        if (parse_id(path_basename(cur->current), &hid) < 0)
            return -1;
    }
    f = snap_get(d, hid);
    return f && f->image ? hid : -1;
}

bool snap_sound(struct snap_disk *d, int id)
{
    struct snap_file *f = snap_get(d, id);
    _cleanup_free_ char *p = snap_path(d, id);
    struct cmd c = CMD_INIT;
    bool ok;

    if (!f || !f->image)
        return false;
    qi_check(&c, p, f->ii.format, QI_FORCE_SHARE);
    ok = host_run_status(d->h, &c) == 0 && qi_check_ok(c.status);
    if (!ok) {
        log_info("%s is not a sound image: taken as half-made", p);
        f->image = false;
        fail_reset();
    }
    cmd_release(&c);
    return ok;
}

int snap_top(struct snap_disk *d, int *top)
{
    const struct snap_file *f;
    int id = d->link_id;

    *top = -1;
    if (d->link_kind != 'L')
        return fail("%s:%s is not a link into its snapshot directory %s", host_name(d->h),
                    d->vp.path, d->l.snap_dir);
    if (id < 0)
        return fail("%s:%s points to %s, not to a file of %s", host_name(d->h), d->vp.path,
                    d->link_target, d->l.snap_dir);
    f = snap_get(d, id);
    if (!f || !f->image)
        return fail("%s:%s points to %s, which is %s", host_name(d->h), d->vp.path,
                    d->link_target, f ? "not a readable image" : "missing");
    for (;;) {
        int kids[4];
        size_t n = snap_children(d, id, kids, ARRAY_SIZE(kids));

        if (n == 0)
            break;
        if (n == 1 && kids[0] > id && streq(snap_get(d, kids[0])->ii.format, "qcow2") &&
            !snap_sound(d, kids[0]))
            break; /* half-made by a crash: not the current state */
        if (n > 1 || kids[0] < id || !streq(snap_get(d, kids[0])->ii.format, "qcow2"))
            return fail("the chain of disk.%d is not linear above its current file %s/%d "
                        "(%zu files use it as their backing file)",
                        d->vp.disk_id, d->l.snap_dir, id, n);
        log_info("disk.%d points to %d, but %d was made on it by an interrupted snapshot: "
                 "%d is the current state",
                 d->vp.disk_id, id, kids[0], kids[0]);
        id = kids[0];
    }
    *top = id;
    return 0;
}

/* ---- planning a snapshot ---- */

/* Q.current says `holder` (or, with holder < 0, must not exist). */
static void plan_current(struct snap_disk *d, int q, int holder, struct snap_ops *o)
{
    _cleanup_free_ char *cname = xasprintf("%d.current", q);
    _cleanup_free_ char *cpath = snap_current_path(d, q);
    const struct snap_file *cur = snap_get_named(d, cname);

    if (holder < 0) {
        if (cur) {
            log_info("removing the stale %s", cpath);
            snap_ops_rm(o, cpath);
        }
        return;
    }
    {
        _cleanup_free_ char *hpath = snap_path(d, holder);
        _cleanup_free_ char *data = xasprintf("%s\n", hpath);

        if (!cur || !cur->current || !streq(cur->current, hpath))
            snap_ops_put(o, cpath, data);
    }
}

int snap_plan_create(struct snap_disk *d, int top, struct snap_ops *prep, struct snap_ops *fin,
                     bool *taken)
{
    int q = d->snap_id, next = q + 1;
    const struct snap_file *t = snap_get(d, top), *n = snap_get(d, next);
    _cleanup_free_ char *next_path = snap_path(d, next);
    _cleanup_free_ char *next_name = snap_name(d, next);

    *taken = false;
    if (!t || !t->image)
        return fail("%s/%d is not a readable image", d->l.snap_dir, top);
    if (!d->self_link)
        snap_ops_link(prep, ".", d->l.self);
    if (top == next) {
        /* made by an earlier run: it sits on the file of snapshot Q, which
         * is Q itself, or another one when ids were skipped */
        if (t->backing < 0)
            return fail("%s is the current state of disk.%d but is not an overlay on a "
                        "snapshot of %s",
                        next_path, d->vp.disk_id, d->l.snap_dir);
        *taken = true;
        plan_current(d, q, t->backing == q ? -1 : t->backing, prep);
    } else if (top > next) {
        return fail("the current state of disk.%d is %s/%d, newer than snapshot %d: the "
                    "snapshot directory holds files oned does not know",
                    d->vp.disk_id, d->l.snap_dir, top, q);
    } else {
        struct cmd c = CMD_INIT;
        _cleanup_free_ char *top_name = snap_name(d, top);
        _cleanup_free_ char *part = xasprintf("%s.part", next_path);

        if (n && n->image && n->backing == top && streq(n->ii.format, "qcow2") &&
            snap_sound(d, next)) {
            log_info("%s, an overlay on the current state, is already there", next_path);
        } else {
            if (n && n->image && streq(n->ii.format, "qcow2")) {
                int kids[1];

                if (snap_children(d, next, kids, 1))
                    return fail("%s already exists and other snapshots depend on it",
                                next_path);
                return fail("%s already exists and is not an overlay on the current state "
                            "%s/%d (its backing file is '%s'): remove it if it is not needed",
                            next_path, d->l.snap_dir, top,
                            n->ii.backing_file ? n->ii.backing_file : "none");
            }
            if (n)
                log_info("rebuilding the incomplete %s", next_path);
            qi_create_overlay(&c, part, top_name, t->ii.format);
            snap_ops_cmd(prep, &c);
            cmd_release(&c);
            snap_ops_publish(prep, part, next_path);
        }
        /* oned takes ids in order but skips those of failed attempts: the
         * state being frozen is then file `top`, not file Q */
        if (top != q)
            log_info("snapshot %d is kept in %s/%d (ids skipped by oned)", q, d->l.snap_dir,
                     top);
        plan_current(d, q, top == q ? -1 : top, prep);
    }
    if (!streq(d->link_target, next_name) || d->link_kind != 'L')
        snap_ops_link(fin, next_name, d->vp.path);
    if (!snap_ops_empty(prep))
        snap_ops_sync(prep, d->l.snap_dir);
    if (!snap_ops_empty(fin))
        snap_ops_sync(fin, d->vp.vm_dir);
    return 0;
}

/* ---- has an overlay data of its own? ---- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* An overlay holds data when its L1 table points to any L2 table: the
 * L1 table of a file qemu-img just created is all zeroes. */
int snap_has_data(struct snap_disk *d, int id, bool *data)
{
    const struct snap_file *f = snap_get(d, id);
    _cleanup_free_ char *p = snap_path(d, id);
    const unsigned char *h;
    uint64_t off, len;
    struct sbuf l1 = SBUF_INIT;
    int rc = 0;

    *data = true;
    if (!f || !f->image || !streq(f->ii.format, "qcow2") || f->head_len < 48)
        return fail("%s is not a qcow2 file", p);
    h = (const unsigned char *)f->head;
    len = (uint64_t)be32(h + 36) * 8;
    off = be64(h + 40);
    if (len == 0) {
        *data = false;
        return 0;
    }
    if (len > (64u << 20))
        return fail("%s has an implausible L1 table (%llu bytes)", p, (unsigned long long)len);
    if (host_is_local(d->h)) {
        _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);

        sbuf_grow(&l1, (size_t)len);
        if (fd < 0 || pread(fd, l1.buf, (size_t)len, (off_t)off) != (ssize_t)len)
            rc = fail_errno("cannot read the L1 table of %s", p);
        else
            sbuf_setlen(&l1, (size_t)len);
    } else {
        struct cmd c = CMD_INIT;

        strvec_pushl(&c.args, "dd", "bs=65536", "iflag=skip_bytes,count_bytes", "status=none",
                     NULL);
        strvec_pushf(&c.args, "if=%s", p);
        strvec_pushf(&c.args, "skip=%llu", (unsigned long long)off);
        strvec_pushf(&c.args, "count=%llu", (unsigned long long)len);
        c.out_max = (size_t)len + 1;
        rc = host_run(d->h, &c);
        if (rc == 0 && c.out.len != len)
            rc = fail("short read of the L1 table of %s:%s", host_name(d->h), p);
        if (rc == 0)
            sbuf_add(&l1, c.out.buf, c.out.len);
        cmd_release(&c);
    }
    if (rc == 0) {
        *data = false;
        for (size_t i = 0; i < l1.len && !*data; i++)
            *data = l1.buf[i] != 0;
    }
    sbuf_release(&l1);
    return rc;
}

/* ---- batches of changes ---- */

/* $1: words of the leading command (0: none), $2: a file to remove when it
 * fails; then the command; then operations, each a word and its operands. */
static const char ops_script[] =
    "n=$1 part=$2; shift 2; "
    "if [ \"$n\" -gt 0 ]; then c=; i=1; "
    "while [ \"$i\" -le \"$n\" ]; do c=\"$c \\\"\\${$i}\\\"\"; i=$((i + 1)); done; "
    "if ! eval \"$c\"; then [ -z \"$part\" ] || rm -f -- \"$part\"; exit 1; fi; "
    "shift \"$n\"; fi; "
    "while [ $# -gt 0 ]; do case $1 in "
    "pub) sync -- \"$2\" && mv -fT -- \"$2\" \"$3\" || exit 1; shift 3 ;; "
    "ln) rm -f -- \"$3.lnk\" && ln -s -- \"$2\" \"$3.lnk\" && mv -fT -- \"$3.lnk\" \"$3\" "
    "|| exit 1; shift 3 ;; "
    "put) printf '%s' \"$2\" >\"$3.part\" && sync -- \"$3.part\" && "
    "mv -fT -- \"$3.part\" \"$3\" || exit 1; shift 3 ;; "
    "rm) rm -f -- \"$2\" || exit 1; shift 2 ;; "
    "sync) sync -- \"$2\" || exit 1; shift 2 ;; "
    "mkdir) mkdir -p -- \"$2\" || exit 1; shift 2 ;; "
    "*) echo \"unknown operation $1\" >&2; exit 2 ;; esac; done";

void snap_ops_init(struct snap_ops *o)
{
    strvec_init(&o->pre);
    strvec_init(&o->ops);
    o->pre_timeout = 0;
}

void snap_ops_release(struct snap_ops *o)
{
    strvec_clear(&o->pre);
    strvec_clear(&o->ops);
}

void snap_ops_cmd(struct snap_ops *o, struct cmd *c)
{
    strvec_pushv(&o->pre, c->args.v);
    o->pre_timeout = c->timeout_s;
}

void snap_ops_publish(struct snap_ops *o, const char *tmp, const char *final)
{
    strvec_pushl(&o->ops, "pub", tmp, final, NULL);
}

void snap_ops_link(struct snap_ops *o, const char *target, const char *link)
{
    strvec_pushl(&o->ops, "ln", target, link, NULL);
}

void snap_ops_put(struct snap_ops *o, const char *path, const char *data)
{
    strvec_pushl(&o->ops, "put", data, path, NULL);
}

void snap_ops_rm(struct snap_ops *o, const char *path)
{
    strvec_pushl(&o->ops, "rm", path, NULL);
}

void snap_ops_sync(struct snap_ops *o, const char *dir)
{
    strvec_pushl(&o->ops, "sync", dir, NULL);
}

void snap_ops_mkdir(struct snap_ops *o, const char *dir)
{
    strvec_pushl(&o->ops, "mkdir", dir, NULL);
}

bool snap_ops_empty(const struct snap_ops *o)
{
    return !o->pre.nr && !o->ops.nr;
}

int snap_ops_run(struct snap_disk *d, struct snap_ops *o, const char *what)
{
    struct cmd c = CMD_INIT;
    const char *part = "";
    int rc;

    if (snap_ops_empty(o))
        return 0;
    /* what qemu-img writes is its last argument */
    if (o->pre.nr)
        part = o->pre.v[o->pre.nr - 1];
    strvec_pushl(&c.args, "sh", "-c", ops_script, "sh", NULL);
    strvec_pushf(&c.args, "%zu", o->pre.nr);
    strvec_push(&c.args, o->pre.nr && ends_with(part, ".part") ? part : "");
    strvec_pushv(&c.args, o->pre.v);
    strvec_pushv(&c.args, o->ops.v);
    c.timeout_s = o->pre_timeout + config_uint("TIMEOUT");
    c.what = what;
    rc = host_run(d->h, &c);
    cmd_release(&c);
    return rc;
}

/* $1 source, $2 destination, $3 "check" to keep a complete copy (prints
 * "kept"): one with the source's size and modification time, to the
 * nanosecond, which the copy takes from its source when it is finished. */
static const char copy_script[] =
    "if [ \"$3\" = check ] && [ -f \"$2\" ] && [ ! -L \"$2\" ]; then "
    "d=$(stat -c '%.9Y %s' -- \"$2\") && s=$(stat -L -c '%.9Y %s' -- \"$1\") || exit 1; "
    "if [ \"$d\" = \"$s\" ]; then echo kept; exit 0; fi; fi; "
    "rm -f -- \"$2.part\" && cp -- \"$1\" \"$2.part\" && touch -r \"$1\" -- \"$2.part\" && "
    "sync -- \"$2.part\" && mv -fT -- \"$2.part\" \"$2\" && sync -- \"${2%/*}\" || "
    "{ rm -f -- \"$2.part\"; exit 1; }";

int snap_copy(struct snap_disk *d, const char *src, const char *dst, bool keep, bool *kept)
{
    struct cmd c = CMD_INIT;
    int rc;

    strvec_pushl(&c.args, "sh", "-c", copy_script, "sh", src, dst, keep ? "check" : "", NULL);
    c.timeout_s = config_uint("COPY_TIMEOUT");
    c.what = "copying the disk";
    rc = host_run(d->h, &c);
    *kept = rc == 0 && starts_with(c.out.buf, "kept");
    cmd_release(&c);
    return rc;
}

/* ---- libvirt ---- */

void virsh_cmd(struct cmd *c, unsigned limit, const char *sub)
{
    strvec_pushl(&c->args, "timeout", "-k", "10", NULL);
    strvec_pushf(&c->args, "%u", limit);
    strvec_pushl(&c->args, config_str("VIRSH"), "-q", "-c", config_str("LIBVIRT_URI"), sub, NULL);
    c->timeout_s = limit + 30;
}

int check_deploy_id(const char *id)
{
    if (str_empty(id) || id[0] == '-' ||
        id[strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-")])
        return fail("the VM's DEPLOY_ID '%s' is not a libvirt domain name", id ? id : "");
    return 0;
}

void dom_release(struct dom_disk *dom)
{
    for (size_t i = 0; i < dom->nl; i++) {
        free(dom->layer[i].path);
        free(dom->layer[i].index);
    }
    free(dom->layer);
    free(dom->deploy_id);
    free(dom->target);
    strvec_clear(&dom->targets);
    memset(dom, 0, sizeof(*dom));
}

static void add_layer(struct snap_disk *d, struct dom_disk *dom, const char *path,
                      const char *index)
{
    struct dom_layer *l;

    dom->layer = xrealloc(dom->layer, (dom->nl + 1) * sizeof(*dom->layer));
    l = &dom->layer[dom->nl++];
    l->path = xstrdup(path);
    l->index = index ? xstrdup(index) : NULL;
    l->id = -1;
    if (path[0] == '/') {
        _cleanup_free_ char *norm = path_normalize(path);

        l->id = streq(norm, d->vp.path) ? d->link_id : snap_path_id(d, "/", norm);
    }
}

int dom_read(struct snap_disk *d, const char *deploy_id, const char *target,
             struct dom_disk *dom)
{
    struct cmd c = CMD_INIT;
    struct xml *x = NULL;
    struct strvec files = STRVEC_INIT, idx = STRVEC_INIT;
    int n, found = -1, rc = -1;

    memset(dom, 0, sizeof(*dom));
    strvec_init(&dom->targets);
    dom->deploy_id = xstrdup(deploy_id);
    dom->target = xstrdup(target);
    virsh_cmd(&c, VIRSH_QUICK, "dumpxml");
    strvec_push(&c.args, deploy_id);
    c.out_max = 16u << 20;
    if (host_run(d->h, &c) < 0) {
        fail_context("cannot read domain %s on %s", deploy_id, host_name(d->h));
        goto out;
    }
    x = xml_doc_parse(c.out.buf, c.out.len, "domain");
    if (!x) {
        fail_context("the definition of domain %s", deploy_id);
        goto out;
    }
    n = xml_count(x, "/domain/devices/disk");
    for (int i = 1; i <= n; i++) {
        _cleanup_free_ char *dev = xml_get(x, "/domain/devices/disk[%d]/target/@dev", i);

        if (str_empty(dev))
            continue;
        strvec_push(&dom->targets, dev);
        if (streq(dev, target))
            found = i;
    }
    if (found < 0) {
        fail("domain %s has no disk %s", deploy_id, target);
        goto out;
    }
    {
        _cleanup_free_ char *top = xml_get(x, "/domain/devices/disk[%d]/source/@file", found);
        _cleanup_free_ char *top_idx = xml_get(x, "/domain/devices/disk[%d]/source/@index", found);

        if (str_empty(top)) {
            fail("disk %s of domain %s is not a file", target, deploy_id);
            goto out;
        }
        add_layer(d, dom, top, str_empty(top_idx) ? NULL : top_idx);
    }
    if (xml_get_all(x, &files, "/domain/devices/disk[%d]//backingStore[source]/source/@file",
                    found) < 0 ||
        xml_get_all(x, &idx, "/domain/devices/disk[%d]//backingStore[source]/@index", found) < 0)
        goto out;
    for (size_t i = 0; i < files.nr; i++)
        add_layer(d, dom, files.v[i], idx.nr == files.nr ? idx.v[i] : NULL);
    rc = 0;
out:
    strvec_clear(&files);
    strvec_clear(&idx);
    xml_free(x);
    cmd_release(&c);
    if (rc < 0)
        dom_release(dom);
    return rc;
}

int dom_find(const struct dom_disk *dom, int id)
{
    for (size_t i = 0; i < dom->nl; i++)
        if (id >= 0 && dom->layer[i].id == id)
            return (int)i;
    return -1;
}

char *dom_layer_arg(const struct dom_disk *dom, size_t i)
{
    if (dom->layer[i].index)
        return xasprintf("%s[%s]", dom->target, dom->layer[i].index);
    return xstrdup(dom->layer[i].path);
}
