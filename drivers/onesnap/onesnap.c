/*
 * onesnap - ask for a disk save of a VM, now or at its shutdown (issue 5).
 *
 *   onesnap create VM_ID DISK_ID NAME --deferred [--type T] [--persistent]
 *   onesnap create VM_ID DISK_ID NAME --hot [--type T] [--snapshot S]
 *   onesnap cancel VM_ID DISK_ID
 *   onesnap list --pending
 *
 * Runs with the user's own credentials, found as OpenNebula's clients find
 * them (ONE_XMLRPC, ONE_AUTH, ~/.one/one_auth; common/one.h): a request
 * needs MANAGE on the VM, as oned's own disk-saveas. --deferred records the
 * request in the VM's user template (common/dsave.h) after the checks oned
 * would make: the disk exists and comes from an image, no other deferred
 * save is pending for it, the name is free (image names are unique per
 * owner: the VM's owner gets the image) and valid. The TM epilog makes the
 * copy when the VM is terminated (drivers/tm/deferred.c). --hot is oned's
 * one.vm.disksaveas and prints the new image's id.
 *
 * Bad input: one line on stderr, exit status 2; a refusal or an oned
 * failure: one line, exit status 1.
 */
#include "util.h"

#include <ctype.h>
#include <time.h>

#include "cleanup.h"
#include "dsave.h"
#include "log.h"
#include "num.h"
#include "one.h"
#include "xml.h"

static const char usage_text[] =
    "usage: onesnap create VM_ID DISK_ID NAME --deferred [--type T] [--persistent]\n"
    "       onesnap create VM_ID DISK_ID NAME --hot [--type T] [--snapshot S]\n"
    "       onesnap cancel VM_ID DISK_ID\n"
    "       onesnap list --pending\n"
    "\n"
    "  --deferred    save the disk when the VM is terminated (the image is made then,\n"
    "                from the disk as the shutdown left it, and given to the VM's owner)\n"
    "  --hot         save it now (oned's one.vm.disksaveas); prints the new image id\n"
    "  --type T      OS, DATABLOCK or CDROM (default: the type of the disk's image)\n"
    "  --persistent  the saved image is persistent (--deferred only)\n"
    "  --snapshot S  save disk snapshot S instead of the current state (--hot only)\n"
    "  cancel        withdraw the pending deferred save of the disk\n"
    "  list --pending  every pending deferred save of the VMs you can see\n"
    "\n"
    "oned is reached as OpenNebula's tools reach it: ONE_XMLRPC, ONE_AUTH, ~/.one/one_auth.\n";

struct args {
    const char *cmd;
    int vmid, disk_id;
    const char *name;
    bool deferred, hot, persistent, pending;
    char *type; /* upper case, or NULL */
    int snap_id;
};

static int usage_error(const char *fmt, ...) PRINTF_LIKE(1, 2);

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("onesnap: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (onesnap --help)\n", stderr);
    return 2;
}

static int failure(void)
{
    fprintf(stderr, "onesnap: %s\n", failed() ? fail_reason() : "failed");
    return 1;
}

/* ---- arguments (positional; options anywhere after the command) ---- */

static int parse_args(int argc, char **argv, struct args *a)
{
    const char *pos[4];
    size_t npos = 0;

    memset(a, 0, sizeof(*a));
    a->snap_id = -1;
    a->cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];

        if (streq(s, "--deferred")) {
            a->deferred = true;
        } else if (streq(s, "--hot")) {
            a->hot = true;
        } else if (streq(s, "--persistent")) {
            a->persistent = true;
        } else if (streq(s, "--pending")) {
            a->pending = true;
        } else if (streq(s, "--type") || streq(s, "--snapshot")) {
            if (i + 1 >= argc)
                return usage_error("%s needs a value", s);
            if (streq(s, "--type")) {
                free(a->type);
                a->type = xstrdup(argv[++i]);
                for (char *p = a->type; *p; p++)
                    *p = (char)toupper((unsigned char)*p);
                if (!dsave_type_valid(a->type))
                    return usage_error("--type must be OS, DATABLOCK or CDROM, not '%s'", argv[i]);
            } else if (parse_id(argv[++i], &a->snap_id) < 0) {
                return usage_error("--snapshot needs a snapshot id, not '%s'", argv[i]);
            }
        } else if (starts_with(s, "--") && !streq(s, "--")) {
            return usage_error("unknown option '%s'", s);
        } else {
            if (npos == ARRAY_SIZE(pos))
                return usage_error("too many arguments");
            pos[npos++] = s;
        }
    }
    if (streq(a->cmd, "create")) {
        if (npos != 3)
            return usage_error("create needs VM_ID DISK_ID NAME");
        if (a->deferred == a->hot)
            return usage_error("create needs exactly one of --deferred and --hot");
        if (a->hot && a->persistent)
            return usage_error("--persistent goes with --deferred only (oned's save-as makes "
                               "non-persistent images)");
        if (a->deferred && a->snap_id >= 0)
            return usage_error("--snapshot goes with --hot only");
        a->name = pos[2];
    } else if (streq(a->cmd, "cancel")) {
        if (npos != 2)
            return usage_error("cancel needs VM_ID DISK_ID");
    } else if (streq(a->cmd, "list")) {
        if (npos || !a->pending)
            return usage_error("list takes --pending only");
        return 0;
    } else {
        return usage_error("unknown command '%s'", a->cmd);
    }
    if (parse_id(pos[0], &a->vmid) < 0)
        return usage_error("'%s' is not a VM id", pos[0]);
    if (parse_id(pos[1], &a->disk_id) < 0)
        return usage_error("'%s' is not a disk id", pos[1]);
    if (a->name && dsave_name_check(a->name) < 0)
        return usage_error("%s", fail_reason());
    return 0;
}

/* ---- oned ---- */

static struct xml *vm_doc(struct one_client *c, int vmid)
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

static char *when(long long epoch)
{
    time_t t = (time_t)epoch;
    struct tm tmv;
    char buf[32];

    if (!gmtime_r(&t, &tmv) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tmv))
        return xasprintf("%lld", epoch);
    return xstrdup(buf);
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

static int create_deferred(struct one_client *c, struct args *a)
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
        since = when(r.requested);
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

static int create_hot(struct one_client *c, struct args *a)
{
    int id;

    if (one_vm_disksaveas(c, a->vmid, a->disk_id, a->name, a->type ? a->type : "", a->snap_id,
                          &id) < 0)
        return -1;
    printf("%d\n", id);
    return 0;
}

static int cancel(struct one_client *c, struct args *a)
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
            since = when(r.requested);
            printf("%-6d %-5d %-20s %-8s %s\n", vmid, id, since, dsave_state_str(r.state), r.name);
        }
        dsave_release(&r);
    }
    strvec_clear(&ids);
}

static int list_pending(struct one_client *c)
{
    _cleanup_free_ char *doc = NULL;
    struct strvec ids = STRVEC_INIT;
    struct xml *pool;
    int rc = 0;

    /* the pool's short documents leave the user template out: each VM is
     * read in full */
    if (one_vmpool_info(c, -2, -1, -1, -1, &doc) < 0)
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

int main(int argc, char **argv)
{
    struct one_client *c;
    struct args a;
    int rc;

    log_setup("onesnap", -1);
    if (argc < 2)
        return usage_error("a command is needed");
    if (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        free(a.type);
        return rc;
    }
    c = one_open(NULL);
    if (!c) {
        free(a.type);
        return failure();
    }
    if (streq(a.cmd, "create"))
        rc = a.deferred ? create_deferred(c, &a) : create_hot(c, &a);
    else if (streq(a.cmd, "cancel"))
        rc = cancel(c, &a);
    else
        rc = list_pending(c);
    one_close(c);
    free(a.type);
    return rc < 0 ? failure() : 0;
}
