/* layout.c - building and reading the qcow2 snap-dir layout; see layout.h. */
#include "layout.h"

#include "cleanup.h"
#include "config.h"
#include "hostpath.h"
#include "log.h"
#include "num.h"
#include "qemu_img.h"

void layout_init(struct layout *l, const char *disk)
{
    l->disk = path_normalize(disk);
    l->name = xstrdup(path_basename(l->disk));
    l->dir = path_dirname(l->disk);
    l->snap_dir = xasprintf("%s.snap", l->disk);
    l->self = xasprintf("%s/%s.snap", l->snap_dir, l->name);
}

void layout_release(struct layout *l)
{
    free(l->disk);
    free(l->name);
    free(l->dir);
    free(l->snap_dir);
    free(l->self);
    memset(l, 0, sizeof(*l));
}

char *layout_snap(const struct layout *l, int id)
{
    return xasprintf("%s/%d", l->snap_dir, id);
}

char *layout_snap_rel(const struct layout *l, int id)
{
    return xasprintf("%s.snap/%d", l->name, id);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return (x > y) - (x < y);
}

int layout_ids(struct host *h, const struct layout *l, int **ids, size_t *n)
{
    struct strvec names = STRVEC_INIT;
    int rc;

    *ids = NULL;
    *n = 0;
    rc = host_list(h, l->snap_dir, &names);
    if (rc == 0) {
        *ids = xcalloc(names.nr + 1, sizeof(int));
        for (size_t i = 0; i < names.nr; i++) {
            int id;

            if (parse_id(names.v[i], &id) == 0)
                (*ids)[(*n)++] = id;
        }
        qsort(*ids, *n, sizeof(int), cmp_int);
    }
    strvec_clear(&names);
    return rc;
}

int layout_active(struct host *h, const struct layout *l, char **path, int *id)
{
    struct rstat st;
    const char *base;

    *path = NULL;
    *id = -1;
    if (host_stat(h, l->disk, &st) < 0)
        return -1;
    if (st.kind != 'L') {
        rstat_release(&st);
        return fail("%s:%s is not a link into its snapshot directory", host_name(h), l->disk);
    }
    *path = st.target[0] == '/' ? path_normalize(st.target) : path_join(l->dir, st.target);
    rstat_release(&st);
    base = path_basename(*path);
    if (parse_id(base, id) < 0)
        *id = -1;
    return 0;
}

int layout_self_link(struct host *h, const struct layout *l)
{
    struct rstat st;
    bool ok;

    if (host_stat(h, l->self, &st) < 0)
        return -1;
    ok = st.kind == 'L' && streq(st.target, ".");
    rstat_release(&st);
    return ok ? 0 : host_symlink(h, ".", l->self);
}

/* True when disk.N -> <name>.snap/0 and 0 is a complete file whose backing
 * file is `backing` (NULL: none). A half-built layout answers false. */
static int layout_complete(struct host *h, const struct layout *l, const char *backing,
                           bool *complete)
{
    _cleanup_free_ char *zero = layout_snap(l, 0);
    _cleanup_free_ char *rel = layout_snap_rel(l, 0);
    struct rstat st;
    struct image_info ii;

    *complete = false;
    if (host_stat(h, l->disk, &st) < 0)
        return -1;
    if (st.kind != 'L' || !streq(st.target, rel)) {
        rstat_release(&st);
        return 0;
    }
    rstat_release(&st);
    if (host_stat(h, zero, &st) < 0)
        return -1;
    if (st.kind != 'F') {
        rstat_release(&st);
        return 0;
    }
    rstat_release(&st);
    if (host_probe_image(h, zero, &ii) < 0) {
        fail_reset(); /* unreadable: rebuild it */
        return 0;
    }
    *complete = streq(ii.format, "qcow2") &&
                (backing ? ii.backing_file && streq(ii.backing_file, backing)
                         : !ii.backing_file);
    image_info_release(&ii);
    return 0;
}

static const char reset_script[] = "rm -rf -- \"$1\" && rm -f -- \"$2\" && mkdir -p -- \"$1\"";

/* Starts a fresh layout: nothing of a previous attempt survives. */
static int layout_reset(struct host *h, const struct layout *l)
{
    if (!host_is_local(h))
        return host_runl(h, "sh", "-c", reset_script, "sh", l->snap_dir, l->disk, NULL);
    if (host_rm_rf(h, l->snap_dir) < 0 || host_rm_rf(h, l->disk) < 0)
        return -1;
    return host_mkdir_p(h, l->snap_dir);
}

/* A unique temporary for file 0: an orphaned command of a killed attempt
 * may still be writing the previous one. */
static char *part_for(const struct layout *l)
{
    return xasprintf("%s/0.part.%ld", l->snap_dir, (long)getpid());
}

/* Publishes the built file 0 and points disk.N at it. */
static int layout_finish(struct host *h, const struct layout *l, const char *tmp)
{
    _cleanup_free_ char *zero = layout_snap(l, 0);
    _cleanup_free_ char *rel = layout_snap_rel(l, 0);

    if (host_publish(h, tmp, zero) < 0 || layout_self_link(h, l) < 0)
        return -1;
    return host_symlink(h, rel, l->disk);
}

int layout_make_overlay(struct host *h, const struct layout *l, const char *backing,
                        const char *backing_fmt)
{
    _cleanup_free_ char *tmp = part_for(l);
    struct cmd c = CMD_INIT;
    bool complete;
    int rc;

    if (layout_complete(h, l, backing, &complete) < 0)
        return -1;
    if (complete)
        return layout_self_link(h, l);
    if (layout_reset(h, l) < 0)
        return -1;
    qi_create_overlay(&c, tmp, backing, backing_fmt);
    rc = host_run(h, &c);
    cmd_release(&c);
    return rc < 0 ? -1 : layout_finish(h, l, tmp);
}

int layout_make_copy(struct host *h, const struct layout *l, const char *src,
                     const char *src_fmt, bool sparse)
{
    _cleanup_free_ char *tmp = part_for(l);
    struct cmd c = CMD_INIT;
    bool complete;
    int rc;

    if (layout_complete(h, l, NULL, &complete) < 0)
        return -1;
    if (complete)
        return layout_self_link(h, l);
    if (layout_reset(h, l) < 0)
        return -1;
    qi_convert(&c, src, src_fmt, tmp, "qcow2", sparse ? 0 : QI_PREALLOC);
    rc = host_run(h, &c);
    cmd_release(&c);
    if (rc == 0 && config_bool("VERIFY_COPIES")) {
        qi_check(&c, tmp, "qcow2", 0);
        rc = host_run_status(h, &c);
        if (rc == 0 && !qi_check_ok(c.status))
            rc = cmd_fail(&c), fail_context("the copy of %s failed its check", src);
        cmd_release(&c);
    }
    return rc < 0 ? -1 : layout_finish(h, l, tmp);
}
