/*
 * request.c - onesnap's requests for a disk save (issue 5): create
 * --deferred records one on the VM, cancel withdraws it, list --pending
 * shows them; create --hot is oned's one.vm.disksaveas.
 *
 * A request needs MANAGE on the VM, as oned's own disk-saveas. --deferred
 * records it in the VM's user template (common/dsave.h) after the checks
 * oned would make: the disk exists and comes from an image, no other
 * deferred save is pending for it, the name is free (image names are
 * unique per owner: the VM's owner gets the image) and valid. The TM epilog
 * makes the copy when the VM is terminated (drivers/tm/deferred.c).
 */
#include "onesnap.h"

#include "cleanup.h"
#include "dsave.h"
#include "log.h"
#include "num.h"

/* ---- oned ---- */

struct xml *vm_doc(struct one_client *c, int vmid)
{
    _cleanup_free_ char *doc = NULL;
    struct xml *x;

    if (one_vm_info(c, vmid, &doc) < 0)
        return NULL;
    x = xml_doc_parse(doc, strlen(doc), "VM");
    if (!x)
        fail_context("oned's document for VM %d", vmid);
    return x;
}

/* The name must be free for the VM's owner (who gets the image) and in the
 * target datastore, among the images the caller can see. */
static int name_free(struct one_client *c, const char *name, long long uid, int ds_id)
{
    _cleanup_free_ char *doc = NULL;
    struct xml *pool;
    int n, rc = 0;

    if (one_imagepool_info(c, -2, -1, -1, &doc) < 0)
        return -1;
    pool = xml_doc_parse(doc, strlen(doc), "IMAGE_POOL");
    if (!pool)
        return fail_context("oned's image pool");
    n = xml_count(pool, "/IMAGE_POOL/IMAGE");
    for (int i = 1; i <= n && rc == 0; i++) {
        _cleanup_free_ char *iname = xml_get(pool, "/IMAGE_POOL/IMAGE[%d]/NAME", i);
        long long iuid = -1, ids = -1, iid = -1;

        if (!iname || !streq(iname, name))
            continue;
        if (xml_get_int(pool, &iuid, "/IMAGE_POOL/IMAGE[%d]/UID", i) < 0 ||
            xml_get_int(pool, &ids, "/IMAGE_POOL/IMAGE[%d]/DATASTORE_ID", i) < 0 ||
            xml_get_int(pool, &iid, "/IMAGE_POOL/IMAGE[%d]/ID", i) < 0)
            fail_reset();
        if (iuid == uid || ids == ds_id)
            rc = fail("an image named '%s' exists already (image %lld)", name, iid);
    }
    xml_free(pool);
    return rc;
}

/* Another disk of the VM waiting to be saved under the same name would
 * clash at registration. */
static int name_free_in_vm(const struct xml *vm, const char *name, int disk_id)
{
    struct strvec ids = STRVEC_INIT;
    int rc = 0;

    xml_get_all(vm, &ids, "/VM/TEMPLATE/DISK/DISK_ID");
    for (size_t i = 0; i < ids.nr && rc == 0; i++) {
        struct dsave_req r;
        int id;

        if (parse_id(ids.v[i], &id) < 0 || id == disk_id)
            continue;
        if (dsave_read(vm, id, &r) < 0) {
            fail_reset();
            continue;
        }
        if (dsave_is_pending(&r) && streq(r.name, name))
            rc = fail("disk %d of this VM is to be saved as '%s' already", id, name);
        dsave_release(&r);
    }
    strvec_clear(&ids);
    return rc;
}

int cmd_create_deferred(struct one_client *c, const struct args *a)
{
    struct xml *vm = vm_doc(c, a->vmid);
    _cleanup_free_ char *image_id = NULL, *tmpl = NULL, *since = NULL;
    struct dsave_req r;
    long long ds = -1, uid = -1, state = -1;
    int rc = -1;

    dsave_init(&r, a->disk_id);
    if (!vm)
        return -1;
    if (xml_count(vm, "/VM/TEMPLATE/DISK[DISK_ID=%d]", a->disk_id) <= 0) {
        fail("VM %d has no disk %d", a->vmid, a->disk_id);
        goto out;
    }
    image_id = xml_get(vm, "/VM/TEMPLATE/DISK[DISK_ID=%d]/IMAGE_ID", a->disk_id);
    if (str_empty(image_id)) {
        fail("disk %d of VM %d does not come from an image (a volatile disk): it cannot be "
             "saved",
             a->disk_id, a->vmid);
        goto out;
    }
    if (xml_get_int(vm, &state, "/VM/STATE") == 0 && state == 6) {
        fail("VM %d is DONE", a->vmid);
        goto out;
    }
    if (dsave_read(vm, a->disk_id, &r) < 0)
        goto out;
    if (dsave_is_pending(&r)) {
        since = snapimg_utc(r.requested);
        fail("disk %d of VM %d has a deferred save pending already ('%s', since %s): cancel "
             "it first",
             a->disk_id, a->vmid, r.name, since);
        goto out;
    }
    dsave_release(&r);
    if (xml_get_int(vm, &ds, "/VM/TEMPLATE/DISK[DISK_ID=%d]/DATASTORE_ID", a->disk_id) < 0 ||
        xml_get_int(vm, &uid, "/VM/UID") < 0 || ds < 0 || ds > INT_MAX) {
        fail_context("oned's document for VM %d", a->vmid);
        goto out;
    }
    /* no --type: the type of the disk's image, which the epilog reads (the
     * user need not be allowed to read the image) */
    r.type = a->type ? xstrdup(a->type) : NULL;
    if (name_free_in_vm(vm, a->name, a->disk_id) < 0 || name_free(c, a->name, uid, (int)ds) < 0)
        goto out;
    r.state = DSAVE_PENDING;
    r.name = xstrdup(a->name);
    r.persistent = a->persistent;
    r.ds_id = (int)ds;
    r.requested = dsave_now();
    r.requested_by = xstrdup(one_user(c));
    tmpl = dsave_template(&r);
    if (one_vm_update(c, a->vmid, tmpl, 1) < 0)
        goto out;
    printf("pending: disk %d of VM %d will be saved as image '%s' (%s%s) in datastore %d "
           "when the VM is terminated\n",
           a->disk_id, a->vmid, r.name, r.type ? r.type : "type of its image",
           r.persistent ? ", persistent" : "", r.ds_id);
    rc = 0;
out:
    dsave_release(&r);
    xml_free(vm);
    return rc;
}

int cmd_create_hot(struct one_client *c, const struct args *a)
{
    int id;

    if (one_vm_disksaveas(c, a->vmid, a->disk_id, a->name, a->type ? a->type : "", a->snap_id,
                          &id) < 0)
        return -1;
    printf("%d\n", id);
    return 0;
}

int cmd_cancel(struct one_client *c, const struct args *a)
{
    struct xml *vm = vm_doc(c, a->vmid);
    _cleanup_free_ char *tmpl = NULL;
    struct dsave_req r;
    int rc = -1;

    if (!vm)
        return -1;
    if (dsave_read(vm, a->disk_id, &r) == 0) {
        if (!dsave_is_pending(&r)) {
            fail("no deferred save is pending for disk %d of VM %d", a->disk_id, a->vmid);
        } else {
            /* an empty vector: Template::merge erases the attribute and adds
             * nothing; the rest of the user template is not rewritten, so a
             * concurrent change of another attribute cannot be lost */
            tmpl = dsave_cancel_template(a->disk_id);
            if (one_vm_update(c, a->vmid, tmpl, 1) == 0) {
                printf("cancelled: disk %d of VM %d will not be saved as '%s'\n", a->disk_id,
                       a->vmid, r.name);
                rc = 0;
            }
        }
        dsave_release(&r);
    }
    xml_free(vm);
    return rc;
}

static void list_vm(const struct xml *vm, int vmid)
{
    struct strvec ids = STRVEC_INIT;

    xml_get_all(vm, &ids, "/VM/TEMPLATE/DISK/DISK_ID");
    for (size_t i = 0; i < ids.nr; i++) {
        _cleanup_free_ char *since = NULL;
        struct dsave_req r;
        int id;

        if (parse_id(ids.v[i], &id) < 0)
            continue;
        if (dsave_read(vm, id, &r) < 0) {
            fprintf(stderr, "onesnap: VM %d: %s\n", vmid, fail_reason());
            fail_reset();
            continue;
        }
        if (dsave_is_pending(&r)) {
            since = snapimg_utc(r.requested);
            printf("%-6d %-5d %-20s %-8s %s\n", vmid, id, since, dsave_state_str(r.state), r.name);
        }
        dsave_release(&r);
    }
    strvec_clear(&ids);
}

int cmd_list_pending(struct one_client *c, const struct args *a)
{
    _cleanup_free_ char *doc = NULL;
    struct strvec ids = STRVEC_INIT;
    struct xml *pool;
    int rc = 0;

    /* the pool's short documents leave the user template out: each VM is
     * read in full; --vm: that VM's id range only */
    if (one_vmpool_info(c, a->mine ? -3 : -2, a->filter.vm_id, a->filter.vm_id, -1, &doc) < 0)
        return -1;
    pool = xml_doc_parse(doc, strlen(doc), "VM_POOL");
    if (!pool)
        return fail_context("oned's VM pool");
    xml_get_all(pool, &ids, "/VM_POOL/VM/ID");
    xml_free(pool);
    printf("%-6s %-5s %-20s %-8s %s\n", "VM", "DISK", "SINCE", "STATE", "NAME");
    for (size_t i = 0; i < ids.nr && rc == 0; i++) {
        struct xml *vm;
        int id;

        if (parse_id(ids.v[i], &id) < 0)
            continue;
        vm = vm_doc(c, id);
        if (!vm) {
            if (one_last_code(c) == ONE_NO_EXISTS) { /* gone meanwhile */
                fail_reset();
                continue;
            }
            rc = -1;
            break;
        }
        list_vm(vm, id);
        xml_free(vm);
    }
    strvec_clear(&ids);
    return rc;
}
