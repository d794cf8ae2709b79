/*
 * clone     fe:SOURCE HOST:VM_DIR/disk.N VM_ID DS_ID   shared system datastore
 * clone.ssh fe:SOURCE HOST:VM_DIR/disk.N VM_ID DS_ID   local system datastore
 *
 * A non-persistent image becomes the VM's disk N (prolog, hot attach;
 * protocol §2.3 clone, §2.4). DS_ID is the image's datastore. Reads
 * DISK[DISK_ID=N]/{FORMAT,QCOW2_STANDALONE,SIZE,ORIGINAL_SIZE,SPARSE} from
 * oned, then works on HOST, which must see the image datastore:
 *  - clone: the image is read at SOURCE rewritten to HOST's datastore root
 *    (<VM_DIR>/../../<image ds>/<name>, as OpenNebula's qcow2 driver does);
 *    <system ds dir>/.monitor is removed (oned monitors a shared datastore).
 *    FORMAT qcow2: disk.N -> disk.N.snap/0, an empty overlay whose backing
 *    file is that absolute path, backing format from the image header (read
 *    on the front-end when the image datastore is mounted there, else on
 *    HOST); with QCOW2_STANDALONE=YES disk.N.snap/0 is a standalone copy
 *    instead (qemu-img convert). Other formats: a byte copy disk.N (and,
 *    unlike stock, a stale disk.N.snap of an earlier disk N is removed).
 *  - clone.ssh: SOURCE is read as is; .monitor says "ssh" (the host probes
 *    monitor the datastore). qcow2: always the standalone copy; others: the
 *    byte copy.
 * Then, when SIZE > ORIGINAL_SIZE, the disk grows to SIZE MB (SPARSE=NO:
 * preallocated). The layout is OpenNebula's (layout.h), byte for byte in
 * names, links and backing names, so either driver can take the VM over.
 * Also HOST:VM_DIR/kernel and /initrd (the OS files of a file datastore):
 * a byte copy, no attributes read, .monitor left alone (oned never marks
 * these lines for mixed mode; stock removes .monitor of a local system
 * datastore then).
 *
 * Re-run: every file is built beside its name and renamed, so a complete
 * layout is found and left alone (only the resize is checked again), as is
 * a byte copy with the image's time and size (or the grown size), and a
 * half-built one is rebuilt from scratch. What an action killed mid-copy
 * leaves running on HOST only ever finishes a file that nothing renames.
 * Refused: a destination that is not disk.N (or kernel/initrd) in this VM's
 * directory with a host, an image outside <datastores>/DS_ID/, '.'/'..',
 * invalid host names; oned unreachable fails before HOST is touched.
 */
#include "tm_actions.h"

#include <inttypes.h>

#include "cleanup.h"
#include "layout.h"
#include "log.h"
#include "num.h"
#include "provision.h"

struct clone {
    struct tm *t;
    struct vm_path dst;
    struct hostpath src;
    char *src_on_host; /* the image as HOST reads it */
    struct host *h;
    /* DISK attributes */
    char *format;
    bool standalone, sparse;
    uint64_t grow_mb; /* 0: no resize */
};

static void clone_release(struct clone *c)
{
    vm_path_release(&c->dst);
    hostpath_release(&c->src);
    free(c->src_on_host);
    free(c->format);
}

static int read_disk(struct clone *c)
{
    _cleanup_free_ char *id = NULL, *standalone = NULL, *size = NULL, *orig = NULL, *sparse = NULL;
    int n = c->dst.disk_id;
    uint64_t s, o;

    if (tm_disk_attr(c->t, n, "DISK_ID", &id) < 0)
        return -1;
    if (!id)
        return fail("VM %d has no disk %d", c->t->vmid, n);
    if (tm_disk_attr(c->t, n, "FORMAT", &c->format) < 0 ||
        tm_disk_attr(c->t, n, "QCOW2_STANDALONE", &standalone) < 0 ||
        tm_disk_attr(c->t, n, "SIZE", &size) < 0 ||
        tm_disk_attr(c->t, n, "ORIGINAL_SIZE", &orig) < 0 ||
        tm_disk_attr(c->t, n, "SPARSE", &sparse) < 0)
        return -1;
    c->standalone = is_yes(standalone);
    c->sparse = !is_no(sparse);
    if (size && orig && parse_u64(size, UINT64_MAX >> 21, &s) == 0 &&
        parse_u64(orig, UINT64_MAX, &o) == 0 && s > o)
        c->grow_mb = s;
    return 0;
}

/* disk.N.snap/0 on the image (format `fmt`): an overlay, or a standalone
 * copy. */
static int make_layout(struct clone *c, const char *fmt, bool copy)
{
    struct layout l;
    int rc;

    layout_init(&l, c->dst.path);
    if (copy) {
        log_info("copying %s into %s:%s as a standalone qcow2 image", c->src_on_host,
                 host_name(c->h), c->dst.path);
        rc = layout_make_copy(c->h, &l, c->src_on_host, fmt, c->sparse);
    } else {
        log_info("%s:%s: an overlay on %s (%s)", host_name(c->h), c->dst.path, c->src_on_host, fmt);
        rc = layout_make_overlay(c->h, &l, c->src_on_host, fmt);
    }
    layout_release(&l);
    if (rc == 0 && c->grow_mb)
        rc = prov_grow(c->h, c->dst.path, "qcow2", c->grow_mb, c->sparse, false);
    return rc;
}

static int make_copy(struct clone *c)
{
    _cleanup_free_ char *stale = xasprintf("%s.snap", c->dst.path);

    log_info("copying %s into %s:%s", c->src_on_host, host_name(c->h), c->dst.path);
    /* a snapshot directory of an earlier disk N would be taken for this one's */
    if (c->dst.kind == VM_PATH_DISK && host_rm_rf(c->h, stale) < 0)
        return -1;
    if (prov_copy(c->h, c->src_on_host, c->dst.path, c->grow_mb << 20) < 0)
        return -1;
    if (!c->grow_mb)
        return 0;
    if (prov_grow(c->h, c->dst.path, str_empty(c->format) ? "raw" : c->format, c->grow_mb,
                  c->sparse, false) < 0)
        return -1;
    /* the source's time marks the copy complete (prov_copy) */
    return host_runl(c->h, "touch", "-r", c->src_on_host, "--", c->dst.path, NULL);
}

static bool is_os_file(const struct vm_path *vp)
{
    const char *base = path_basename(vp->path);

    return vp->kind == VM_PATH_FILE && (streq(base, "kernel") || streq(base, "initrd"));
}

static int parse_args(struct clone *c, struct action_ctx *ctx)
{
    int ds_id;

    if (prov_ds_id(ctx->argv[3], &ds_id) < 0 || prov_source(ctx->argv[0], ds_id, &c->src) < 0)
        return -1;
    if (vm_path_parse(ctx->argv[1], c->t->vmid, "destination", &c->dst) < 0)
        return -1;
    if (!c->dst.host || (c->dst.kind != VM_PATH_DISK && !is_os_file(&c->dst)))
        return fail("the destination '%s' is not of the form "
                    "host:<datastores>/<ds id>/%d/disk.<n>",
                    ctx->argv[1], c->t->vmid);
    c->src_on_host =
        c->t->ssh_mode ? xstrdup(c->src.path) : image_path_on_host(&c->dst, c->src.path);
    return 0;
}

static int clone_run(struct clone *c, struct action_ctx *ctx)
{
    enum prov_monitor mon = c->t->ssh_mode ? PROV_MONITOR_SSH : PROV_MONITOR_OFF;
    struct image_info ii = { 0 };
    int rc;

    if (parse_args(c, ctx) < 0)
        return -1;
    /* oned never adds the mixed-mode suffix to the OS files' CLONE: the
     * system datastore's kind is unknown here, its .monitor is left alone */
    if (c->dst.kind != VM_PATH_DISK)
        mon = PROV_MONITOR_KEEP;
    if (c->dst.kind == VM_PATH_DISK && read_disk(c) < 0)
        return -1;
    c->h = tm_host(c->t, c->dst.host);
    if (!c->h)
        return -1;
    if (!streq(c->format, "qcow2"))
        return prov_prepare(c->h, &c->dst, mon, NULL) < 0 ? -1 : make_copy(c);
    /* read-only first: a missing image changes nothing on HOST */
    if (prov_probe_source(c->h, c->src.path, c->src_on_host, &ii) < 0)
        return -1;
    rc = prov_prepare(c->h, &c->dst, mon, NULL);
    if (rc == 0)
        rc = make_layout(c, ii.format, c->t->ssh_mode || c->standalone);
    image_info_release(&ii);
    return rc;
}

int tm_clone(struct action_ctx *ctx)
{
    struct tm t;
    struct clone c = { .t = &t };
    int rc;

    if (tm_start(&t, ctx) < 0)
        return -1;
    rc = clone_run(&c, ctx);
    clone_release(&c);
    tm_end(&t);
    return rc;
}
