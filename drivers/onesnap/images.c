/*
 * images.c - the snapshots a user has: list (filters, pages), show, delete.
 *
 * A snapshot is an image a disk save made (common/snapimg.h), whichever way:
 * oned's disk-saveas, qcow2c's hot save of a running VM, or a deferred save
 * at terminate. They are ordinary images to oned; onesnap finds them by the
 * attributes each save leaves, so that a user sees "the saves of VM 7" and
 * not the whole image pool, and so that delete cannot take an image no save
 * made.
 */
#include "onesnap.h"

#include "cleanup.h"
#include "dsave.h"
#include "log.h"
#include "sbuf.h"

struct snaplist {
    struct snapimg *v;
    size_t nr, alloc;
};

static void snaplist_clear(struct snaplist *l)
{
    for (size_t i = 0; i < l->nr; i++)
        snapimg_release(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Newest first: what a user looks for is usually the last save. */
static int by_id_desc(const void *a, const void *b)
{
    const struct snapimg *x = a, *y = b;

    return (x->id < y->id) - (x->id > y->id);
}

/* The snapshots the caller can see (or owns: mine) that pass the filter. */
static int load_snapshots(struct one_client *c, const struct args *a, struct snaplist *l)
{
    _cleanup_free_ char *doc = NULL;
    struct xml *pool;
    int n;

    if (one_imagepool_info(c, a->mine ? -3 : -2, -1, -1, &doc) < 0)
        return -1;
    pool = xml_doc_parse(doc, strlen(doc), "IMAGE_POOL");
    if (!pool)
        return fail_context("oned's image pool");
    n = xml_count(pool, "/IMAGE_POOL/IMAGE");
    for (int i = 1; i <= n; i++) {
        _cleanup_free_ char *base = xasprintf("/IMAGE_POOL/IMAGE[%d]", i);
        struct snapimg s;
        int r = snapimg_read(pool, base, &s);

        if (r < 0) { /* one odd image does not hide the others */
            fprintf(stderr, "onesnap: %s\n", fail_reason());
            fail_reset();
            continue;
        }
        if (r == 0)
            continue;
        if (!snapimg_matches(&s, &a->filter)) {
            snapimg_release(&s);
            continue;
        }
        ALLOC_GROW(l->v, l->nr + 1, l->alloc);
        l->v[l->nr++] = s;
    }
    xml_free(pool);
    if (l->nr) /* qsort's base may not be NULL, even for no entries */
        qsort(l->v, l->nr, sizeof(*l->v), by_id_desc);
    return 0;
}

/* The instant to the second: the table's column stays narrow. */
static void print_when(const char *when)
{
    if (strlen(when) > 20 && when[19] == '.')
        printf("%-.19sZ", when);
    else
        printf("%-20s", when);
}

int cmd_list(struct one_client *c, const struct args *a)
{
    struct snaplist l = { 0 };
    size_t first, n, pages;

    if (load_snapshots(c, a, &l) < 0)
        return -1;
    pages = snap_pages(l.nr, a->per_page);
    if (snap_page(l.nr, a->page, a->per_page, &first, &n) < 0) {
        fail("there is no page %zu: %zu snapshot%s make%s %zu page%s of %zu", a->page, l.nr,
             l.nr == 1 ? "" : "s", l.nr == 1 ? "s" : "", pages, pages == 1 ? "" : "s", a->per_page);
        snaplist_clear(&l);
        return -1;
    }
    printf("%-6s %-6s %-4s %-8s %-20s %-16s %8s %-12s %s\n", "ID", "VM", "DISK", "HOW", "SAVED",
           "STATE", "SIZE", "OWNER", "NAME");
    for (size_t i = first; i < first + n; i++) {
        const struct snapimg *s = &l.v[i];

        printf("%-6d %-6d %-4d %-8s ", s->id, s->vm_id, s->disk_id, snapimg_how_str(s->how));
        print_when(s->when);
        printf(" %-16s %7lldM %-12s %s\n", snapimg_state_str(s->state), s->size_mb, s->uname,
               s->name);
    }
    if (pages > 1)
        printf("page %zu of %zu (%zu snapshots); --page N for another\n", a->page, pages, l.nr);
    snaplist_clear(&l);
    return 0;
}

int snap_load(struct one_client *c, int id, struct xml **doc, struct snapimg *s)
{
    _cleanup_free_ char *text = NULL;
    int rc;

    *doc = NULL;
    if (one_image_info(c, id, &text) < 0)
        return -1;
    *doc = xml_doc_parse(text, strlen(text), "IMAGE");
    if (!*doc)
        return fail_context("oned's document for image %d", id);
    rc = snapimg_read(*doc, "/IMAGE", s);
    if (rc == 0)
        return fail("image %d is not a disk snapshot (no disk save made it)", id);
    return rc < 0 ? -1 : 0;
}

static void field(const char *name, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void field(const char *name, const char *fmt, ...)
{
    va_list ap;

    printf("%-12s ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static const char *how_long(enum snap_how how)
{
    switch (how) {
    case SNAP_HOT:
        return "hot save of the running VM";
    case SNAP_DEFERRED:
        return "deferred save, made when the VM was terminated";
    case SNAP_SAVEAS:
        return "oned's disk-saveas";
    default:
        return "?";
    }
}

int cmd_show(struct one_client *c, const struct args *a)
{
    struct xml *doc;
    struct snapimg s;
    struct strvec vms = STRVEC_INIT;
    struct sbuf users = SBUF_INIT;
    _cleanup_free_ char *note = NULL;
    const char *type;

    if (snap_load(c, a->image_id, &doc, &s) < 0) {
        xml_free(doc);
        return -1;
    }
    type = dsave_type_name(s.type);
    note = xml_get_def(doc, "", "/IMAGE/TEMPLATE/HOT_SAVE_NOTE");
    xml_get_all(doc, &vms, "/IMAGE/VMS/ID");
    for (size_t i = 0; i < vms.nr; i++)
        sbuf_addf(&users, "%s%s", i ? " " : "", vms.v[i]);
    field("IMAGE", "%d", s.id);
    field("NAME", "%s", s.name);
    field("FROM", "VM %d, disk %d", s.vm_id, s.disk_id);
    field("HOW", "%s", how_long(s.how));
    field("SAVED", "%s", s.when);
    if (*s.consistency)
        field("CONSISTENCY", "%s", s.consistency);
    if (*s.shutdown)
        field("SHUTDOWN", "%s", s.shutdown);
    if (*note)
        field("NOTE", "%s", note);
    field("STATE", "%s", snapimg_state_str(s.state));
    field("TYPE", "%s%s", type ? type : "?", s.persistent ? ", persistent" : "");
    field("SIZE", "%lld MB", s.size_mb);
    field("OWNER", "%s:%s", s.uname, s.gname);
    field("DATASTORE", "%lld (%s)", s.ds_id, s.ds_name);
    field("USED BY", "%s", vms.nr ? users.buf : "-");
    sbuf_release(&users);
    strvec_clear(&vms);
    snapimg_release(&s);
    xml_free(doc);
    return 0;
}

int cmd_delete(struct one_client *c, const struct args *a)
{
    struct xml *doc;
    struct snapimg s;
    int rc = -1;

    if (snap_load(c, a->image_id, &doc, &s) < 0) {
        xml_free(doc);
        return -1;
    }
    /* oned refuses too, but names neither the VMs nor what to do */
    if (s.running_vms > 0) {
        fail("snapshot %d is the disk of %lld VM%s: terminate %s first", s.id, s.running_vms,
             s.running_vms == 1 ? "" : "s", s.running_vms == 1 ? "it" : "them");
    } else if (one_image_delete(c, s.id, false) == 0) {
        printf("deleted: snapshot %d '%s' (VM %d, disk %d)\n", s.id, s.name, s.vm_id, s.disk_id);
        rc = 0;
    }
    snapimg_release(&s);
    xml_free(doc);
    return rc;
}
