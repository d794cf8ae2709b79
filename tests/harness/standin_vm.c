/*
 * standin_vm.c - one.vm.* and one.vmpool.info of the oned stand-in, after
 * src/rm/api/VirtualMachineAPI.cc, VirtualMachinePoolAPI.cc and
 * src/vm/VirtualMachine.cc of OpenNebula 7.5 (the version of the captures).
 */

#include "standin_api.h"

#include <time.h>

#include "cleanup.h"
#include "log.h"
#include "num.h"

/* VirtualMachine::VmState and LcmState values used here. */
enum {
    VM_PENDING = 1,
    VM_HOLD = 2,
    VM_ACTIVE = 3,
    VM_STOPPED = 4,
    VM_SUSPENDED = 5,
    VM_DONE = 6,
    VM_POWEROFF = 8,
    VM_UNDEPLOYED = 9,
    VM_CLONING_FAILURE = 11,
    LCM_INIT = 0,
    LCM_RUNNING = 3,
    LCM_HOTPLUG_SAVEAS = 26,
    LCM_HOTPLUG_SAVEAS_POWEROFF = 27,
    LCM_HOTPLUG_SAVEAS_SUSPENDED = 28,
    LCM_HOTPLUG_SAVEAS_UNDEPLOYED = 67,
    LCM_HOTPLUG_SAVEAS_STOPPED = 68,
};

/* VM_RESTRICTED_ATTR of the stock oned.conf that are single attributes. The
 * vector ones (NIC/MAC, DISK/...) only matter in TEMPLATE, which
 * one.vm.update never touches. */
static const char *const vm_restricted[] = {
    "CPU_COST", "DEPLOY_ID", "DISK_COST", "EMULATOR", "MEMORY_COST", "PCI", "USER_PRIORITY",
};

/* STATE, LCM_STATE and, as the pool update that follows every change does,
 * PREV_STATE and PREV_LCM_STATE. */
static int set_vm_state(char **text, int state, int lcm)
{
    if (doc_edit_child_int(text, "STATE", state) < 0 ||
        doc_edit_child_int(text, "LCM_STATE", lcm) < 0 ||
        doc_edit_child_int(text, "PREV_STATE", state) < 0 ||
        doc_edit_child_int(text, "PREV_LCM_STATE", lcm) < 0)
        return -1;
    return 0;
}

/* Replaces the element `name` (TEMPLATE, USER_TEMPLATE) by the model. */
static int splice_template(char **text, const char *name, const struct tmpl *t)
{
    struct sbuf el = SBUF_INIT;
    char *out;

    tmpl_to_xml(t, name, &el);
    out = doc_replace_child(*text, name, el.buf);
    sbuf_release(&el);
    if (!out)
        return -1;
    free(*text);
    *text = out;
    return 0;
}

void object_info(struct req *r, enum kind k, int id)
{
    _cleanup_free_ char *text = NULL;
    struct xml *doc = object_load(r, k, id, &text);

    if (!doc)
        return;
    if (authorize(r, doc, kind_root(k), OP_USE, id, -1))
        reply_str(r, text);
    xml_free(doc);
}

void m_vm_info(struct req *r)
{
    bool decrypt;
    int id;

    if (param_int(r, 1, &id) < 0 || param_opt_bool(r, 2, false, &decrypt) < 0)
        return;
    object_info(r, KIND_VM, id);
}

/* ---- one.vm.update ---- */

/* replace_template / append_template of the USER_TEMPLATE; 0, or -1 with
 * the INTERNAL answer given. */
static int apply_user_template(struct req *r, struct tmpl *user, struct tmpl *new_t, int append)
{
    const char *ra = r->admin ? NULL
                              : tmpl_check_restricted(new_t, user, append == 1, vm_restricted,
                                                      ARRAY_SIZE(vm_restricted));

    if (ra) {
        if (append)
            reply_error(r, E_INTERNAL, -1,
                        "Cannot update template. User Template includes a restricted "
                        "attribute %s",
                        ra);
        else
            reply_error(r, E_INTERNAL, -1,
                        "Cannot update template. Tried to change restricted attribute: %s", ra);
        return -1;
    }
    if (append) {
        tmpl_merge(user, new_t);
    } else {
        tmpl_free(user);
        *user = *new_t;
        *new_t = (struct tmpl)TMPL_INIT;
    }
    return 0;
}

static void vm_update(struct req *r, int id, const char *text_tmpl, int append)
{
    _cleanup_free_ char *text = NULL;
    _cleanup_free_ char *err = NULL;
    struct tmpl user = TMPL_INIT, new_t = TMPL_INIT;
    struct xml *doc = object_load(r, KIND_VM, id, &text);

    if (!doc)
        return;
    if (!authorize(r, doc, "VM", OP_MANAGE, id, -1))
        goto out;
    if (append < 0 || append > 1) {
        reply_error(r, E_RPC_API, -1, "Wrong update type");
        goto out;
    }
    if (tmpl_parse(&new_t, text_tmpl, &err) < 0) {
        reply_error(r, E_ACTION, -1, "%s", err);
        goto out;
    }
    tmpl_from_doc(&user, doc, "/VM/USER_TEMPLATE");
    if (apply_user_template(r, &user, &new_t, append) < 0)
        goto out;
    if (splice_template(&text, "USER_TEMPLATE", &user) < 0) {
        reply_error(r, E_INTERNAL, id, "stand-in: VM %d: %s", id, fail_reason());
        fail_reset();
        goto out;
    }
    if (object_store(r, KIND_VM, id, text) == 0)
        reply_int(r, id);
out:
    tmpl_free(&user);
    tmpl_free(&new_t);
    xml_free(doc);
}

void m_vm_update(struct req *r)
{
    _cleanup_free_ char *tmpl_text = NULL;
    int id, append;

    /* append is optional and defaults to 0: replace (trap 33) */
    if (param_int(r, 1, &id) < 0 || param_str(r, 2, &tmpl_text) < 0 ||
        param_opt_int(r, 3, 0, &append) < 0)
        return;
    vm_update(r, id, tmpl_text, append);
}

/* ---- one.vm.disksaveas (protocol §3.1) ---- */

struct saveas {
    int vid, disk_id, snap_id;
    const char *name, *type;
    int state, lcm; /* the VM's states during the save-as */
    int iid_orig;
    long long size;
    struct tmpl vm_tmpl;
};

/* VirtualMachine::set_saveas_state. */
static int saveas_state(long long state, long long lcm, struct saveas *sa)
{
    sa->state = VM_ACTIVE;
    switch (state) {
    case VM_ACTIVE:
        sa->lcm = LCM_HOTPLUG_SAVEAS;
        return lcm == LCM_RUNNING ? 0 : -1;
    case VM_POWEROFF:
        sa->lcm = LCM_HOTPLUG_SAVEAS_POWEROFF;
        return 0;
    case VM_SUSPENDED:
        sa->lcm = LCM_HOTPLUG_SAVEAS_SUSPENDED;
        return 0;
    case VM_UNDEPLOYED:
        sa->lcm = LCM_HOTPLUG_SAVEAS_UNDEPLOYED;
        return 0;
    case VM_STOPPED:
        sa->lcm = LCM_HOTPLUG_SAVEAS_STOPPED;
        return 0;
    default:
        return -1;
    }
}

/* A sub-attribute holding an id or a size, or `def`. */
static long long vector_ll(const struct tmpl_attr *a, const char *key, long long def)
{
    const char *v = tmpl_vector_get(a, key);
    int64_t n;

    return v && parse_i64(v, 0, INT_MAX, &n) == 0 ? n : def;
}

/* VirtualMachineDisks::set_saveas: the disk, its image and its size. */
static struct tmpl_attr *saveas_disk(struct req *r, const struct xml *vm, struct saveas *sa)
{
    char id[16];
    struct tmpl_attr *disk;

    snprintf(id, sizeof(id), "%d", sa->disk_id);
    tmpl_from_doc(&sa->vm_tmpl, vm, "/VM/TEMPLATE");
    disk = tmpl_find_vector(&sa->vm_tmpl, "DISK", "DISK_ID", id);
    if (!disk) {
        reply_error(r, E_INTERNAL, sa->vid, "Cannot use DISK. DISK does not exist.");
        return NULL;
    }
    if (vector_ll(disk, "IMAGE_ID", -1) < 0) {
        reply_error(r, E_INTERNAL, sa->vid,
                    "Cannot use DISK. DISK does not have a valid IMAGE_ID.");
        return NULL;
    }
    sa->iid_orig = (int)vector_ll(disk, "IMAGE_ID", -1);
    if (sa->snap_id != -1 &&
        !xml_count(vm, "/VM/SNAPSHOTS[DISK_ID=%d]/SNAPSHOT[ID=%d]", sa->disk_id, sa->snap_id)) {
        reply_error(r, E_INTERNAL, sa->vid, "Cannot use DISK. Snapshot does not exist.");
        return NULL;
    }
    sa->size = vector_ll(disk, "SIZE", 0); /* MB */
    return disk;
}

/* VirtualMachineAPI::vm_authorization for DISK_SAVEAS: MANAGE VM, USE of the
 * original image and of its datastore; refusals joined as AuthRequest does. */
static bool saveas_authorized(struct req *r, const struct xml *vm, const struct xml *img,
                              const struct xml *ds, const struct saveas *sa, int ds_id)
{
    struct sbuf why = SBUF_INIT;
    bool ok;

    if (!may(r, vm, "VM", OP_MANAGE))
        sbuf_addf(&why, "Not authorized to perform MANAGE VM [%d]", sa->vid);
    if (!may(r, img, "IMAGE", OP_USE))
        sbuf_addf(&why, "%sNot authorized to perform USE IMAGE [%d]", why.len ? "; " : "",
                  sa->iid_orig);
    if (!may(r, ds, "DATASTORE", OP_USE))
        sbuf_addf(&why, "%sNot authorized to perform USE DATASTORE [%d]", why.len ? "; " : "",
                  ds_id);
    ok = why.len == 0;
    if (!ok)
        reply_denied(r, sa->vid, why.buf);
    sbuf_release(&why);
    return ok;
}

/* The image oned allocates for the copy: LOCKED, FORMAT save_as, in the
 * datastore of the disk's image, owned by the caller. */
static int saveas_image(struct req *r, const struct saveas *sa, const struct xml *img,
                        const struct xml *ds, int ds_id)
{
    _cleanup_free_ char *ds_name = xml_get_def(ds, "", "/DATASTORE/NAME");
    _cleanup_free_ char *prefix = xml_get(img, "/IMAGE/TEMPLATE/DEV_PREFIX");
    _cleanup_free_ char *target = xml_get(img, "/IMAGE/TEMPLATE/TARGET");
    int orig_type = (int)doc_ll(img, "/IMAGE/TYPE", 0);
    int type = str_empty(sa->type) ? orig_type : image_type(sa->type);
    struct tmpl t = TMPL_INIT;
    struct new_image ni = {
        .name = sa->name,
        .type = type,
        .source = "",
        .path = "",
        .format = "save_as",
        .fs = "",
        .size_mb = sa->size,
        .state = 4,
        .ds_id = ds_id,
        .ds_name = ds_name,
        .disk_type = (int)doc_ll(ds, "/DATASTORE/DISK_TYPE", 0),
        .tmpl = &t,
    };
    char buf[256];
    const char *problem = image_name_problem(r, sa->name, r->user->uid, buf, sizeof(buf));
    int id = -1;

    if (problem) {
        reply_error(r, E_ALLOCATE, sa->vid, "Error allocating a new image. %s", problem);
        return -1;
    }
    if (type < 0) {
        reply_error(r, E_ALLOCATE, sa->vid, "Error allocating a new image. Unknown type %s",
                    sa->type);
        return -1;
    }
    snprintf(buf, sizeof(buf), "%d", sa->iid_orig);
    tmpl_set(&t, "SAVED_IMAGE_ID", buf);
    snprintf(buf, sizeof(buf), "%d", sa->disk_id);
    tmpl_set(&t, "SAVED_DISK_ID", buf);
    snprintf(buf, sizeof(buf), "%d", sa->vid);
    tmpl_set(&t, "SAVED_VM_ID", buf);
    tmpl_set(&t, "SAVE_AS_HOT", "YES");
    if (!str_empty(target))
        tmpl_set(&t, "TARGET", target);
    if (type == 0 || type == 2) /* OS, DATABLOCK keep a DEV_PREFIX */
        tmpl_set(&t, "DEV_PREFIX", str_empty(prefix) ? "sd" : prefix);
    id = image_create(r, &ni);
    tmpl_free(&t);
    return id;
}

/* HOTPLUG_SAVE_AS_ACTIVE/SNAPSHOT_ID on the disk and the VM's new state. */
static int saveas_mark_vm(struct req *r, char **text, struct saveas *sa, struct tmpl_attr *disk)
{
    char snap[16];

    snprintf(snap, sizeof(snap), "%d", sa->snap_id);
    tmpl_vector_set(disk, "HOTPLUG_SAVE_AS_ACTIVE", "YES");
    tmpl_vector_set(disk, "HOTPLUG_SAVE_AS_SNAPSHOT_ID", snap);
    if (splice_template(text, "TEMPLATE", &sa->vm_tmpl) < 0 ||
        set_vm_state(text, sa->state, sa->lcm) < 0) {
        reply_error(r, E_INTERNAL, sa->vid, "stand-in: VM %d: %s", sa->vid, fail_reason());
        fail_reset();
        return -1;
    }
    return object_store(r, KIND_VM, sa->vid, *text);
}

/* After the VM checks: the original image, its datastore, the image. */
static void saveas_allocate(struct req *r, struct saveas *sa, const struct xml *vm, char **vm_text,
                            struct tmpl_attr *disk)
{
    _cleanup_free_ char *img_text = NULL, *ds_text = NULL;
    struct xml *img = object_load(r, KIND_IMAGE, sa->iid_orig, &img_text);
    struct xml *ds = NULL;
    int ds_id, type, id;

    if (!img)
        return;
    ds_id = (int)doc_ll(img, "/IMAGE/DATASTORE_ID", -1);
    type = (int)doc_ll(img, "/IMAGE/TYPE", 0);
    if (type != 0 && type != 1 && type != 2) {
        reply_error(r, E_INTERNAL, sa->vid, "Cannot save an image of type %s",
                    image_type_str(type));
    } else if ((ds = object_load(r, KIND_DATASTORE, ds_id, &ds_text))) {
        if (sa->size > doc_ll(ds, "/DATASTORE/FREE_MB", LLONG_MAX))
            reply_error(r, E_ACTION, sa->vid, "Not enough space in datastore");
        else if (saveas_authorized(r, vm, img, ds, sa, ds_id) &&
                 (id = saveas_image(r, sa, img, ds, ds_id)) >= 0 &&
                 saveas_mark_vm(r, vm_text, sa, disk) == 0)
            reply_int(r, id);
    }
    xml_free(ds);
    xml_free(img);
}

static void disk_saveas(struct req *r, struct saveas *sa)
{
    _cleanup_free_ char *text = NULL;
    struct xml *vm = object_load(r, KIND_VM, sa->vid, &text);
    struct tmpl_attr *disk;

    if (!vm)
        return;
    if (saveas_state(doc_ll(vm, "/VM/STATE", -1), doc_ll(vm, "/VM/LCM_STATE", -1), sa) < 0)
        reply_error(r, E_INTERNAL, sa->vid,
                    "VM has to be RUNNING, POWEROFF or SUSPENDED to save disks.");
    else if ((disk = saveas_disk(r, vm, sa)))
        saveas_allocate(r, sa, vm, &text, disk);
    tmpl_free(&sa->vm_tmpl);
    xml_free(vm);
}

void m_vm_disksaveas(struct req *r)
{
    _cleanup_free_ char *name = NULL, *type = NULL;
    struct saveas sa = { .vm_tmpl = TMPL_INIT };

    /* all five are mandatory: snap_id is read with getInt(5) */
    if (param_int(r, 1, &sa.vid) < 0 || param_int(r, 2, &sa.disk_id) < 0 ||
        param_str(r, 3, &name) < 0 || param_str(r, 4, &type) < 0 ||
        param_int(r, 5, &sa.snap_id) < 0)
        return;
    sa.name = name;
    sa.type = type;
    disk_saveas(r, &sa);
}

static const struct {
    int from, state, lcm;
} saveas_restore[] = {
    { LCM_HOTPLUG_SAVEAS, VM_ACTIVE, LCM_RUNNING },
    { LCM_HOTPLUG_SAVEAS_POWEROFF, VM_POWEROFF, LCM_INIT },
    { LCM_HOTPLUG_SAVEAS_SUSPENDED, VM_SUSPENDED, LCM_INIT },
    { LCM_HOTPLUG_SAVEAS_UNDEPLOYED, VM_UNDEPLOYED, LCM_INIT },
    { LCM_HOTPLUG_SAVEAS_STOPPED, VM_STOPPED, LCM_INIT },
};

static void clear_disk_flags(struct tmpl *t)
{
    for (size_t i = 0; i < t->nr; i++) {
        struct tmpl_attr *a = &t->attrs[i];

        if (a->value || !streq(a->name, "DISK") || !tmpl_vector_get(a, "HOTPLUG_SAVE_AS_ACTIVE"))
            continue;
        tmpl_vector_unset(a, "HOTPLUG_SAVE_AS_ACTIVE");
        tmpl_vector_unset(a, "HOTPLUG_SAVE_AS");
        tmpl_vector_unset(a, "HOTPLUG_SAVE_AS_SOURCE");
        tmpl_vector_unset(a, "HOTPLUG_SAVE_AS_SNAPSHOT_ID");
    }
}

int vm_clear_saveas(struct req *r, int vm_id)
{
    _cleanup_free_ char *text = doc_read(r->dir, KIND_VM, vm_id);
    struct xml *vm = text ? xml_doc_parse(text, strlen(text), "VM") : NULL;
    struct tmpl t = TMPL_INIT;
    long long lcm;
    int rc = 0;

    if (!vm) { /* the VM is gone: nothing to restore */
        fail_reset();
        return 0;
    }
    lcm = doc_ll(vm, "/VM/LCM_STATE", -1);
    tmpl_from_doc(&t, vm, "/VM/TEMPLATE");
    clear_disk_flags(&t);
    for (size_t i = 0; i < ARRAY_SIZE(saveas_restore); i++)
        if (saveas_restore[i].from == lcm)
            rc = set_vm_state(&text, saveas_restore[i].state, saveas_restore[i].lcm);
    if (rc == 0 && splice_template(&text, "TEMPLATE", &t) == 0)
        rc = object_store(r, KIND_VM, vm_id, text);
    tmpl_free(&t);
    xml_free(vm);
    return rc;
}

/* ---- one.vm.allocate ---- */

/* Attributes VirtualMachine::insert keeps in TEMPLATE; the rest of what the
 * caller sends stays in USER_TEMPLATE. */
static const char *const vm_template_attrs[] = {
    "CONTEXT",        "CPU",   "DISK",   "EMULATOR", "FEATURES",      "GRAPHICS",
    "HYPERV_OPTIONS", "INPUT", "MEMORY", "NIC",      "NIC_ALIAS",     "NIC_DEFAULT",
    "NUMA_NODE",      "OS",    "PCI",    "RAW",      "SPICE_OPTIONS", "TM_MAD_SYSTEM",
    "TOPOLOGY",       "VCPU",  "VIDEO",
};

static bool is_template_attr(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(vm_template_attrs); i++)
        if (streq(name, vm_template_attrs[i]))
            return true;
    return false;
}

static bool positive_number(const char *s, bool integer)
{
    char *end;
    double d;
    int64_t n;

    if (str_empty(s))
        return false;
    d = strtod(s, &end);

    return !*end && d > 0 && (!integer || parse_i64(s, 1, INT64_MAX, &n) == 0);
}

static void vm_document(struct req *r, struct sbuf *doc, int id, const char *name, bool hold,
                        const struct tmpl *sys, const struct tmpl *user)
{
    _cleanup_free_ char *gname = group_name(&r->users, r->user->gid);
    int state = hold ? VM_HOLD : VM_PENDING;

    sbuf_addf(doc, "<VM><ID>%d</ID><UID>%d</UID><GID>%d</GID><UNAME>", id, r->user->uid,
              r->user->gid);
    xml_escape(doc, r->user->name);
    sbuf_adds(doc, "</UNAME><GNAME>");
    xml_escape(doc, gname);
    sbuf_adds(doc, "</GNAME><NAME>");
    xml_escape(doc, name);
    sbuf_adds(doc, "</NAME>");
    default_permissions(doc);
    sbuf_addf(doc,
              "<LAST_POLL>0</LAST_POLL><STATE>%d</STATE><LCM_STATE>0</LCM_STATE>"
              "<PREV_STATE>%d</PREV_STATE><PREV_LCM_STATE>0</PREV_LCM_STATE>"
              "<RESCHED>0</RESCHED><STIME>%lld</STIME><ETIME>0</ETIME><DEPLOY_ID></DEPLOY_ID>"
              "<MONITORING></MONITORING><SCHED_ACTIONS></SCHED_ACTIONS>",
              state, state, (long long)time(NULL));
    tmpl_to_xml(sys, "TEMPLATE", doc);
    tmpl_to_xml(user, "USER_TEMPLATE", doc);
    sbuf_adds(doc, "<HISTORY_RECORDS></HISTORY_RECORDS>"
                   "<BACKUPS><BACKUP_CONFIG/><BACKUP_IDS></BACKUP_IDS></BACKUPS></VM>");
}

/* The DISKs numbered (DISK_ID) and the images they name taken for VM
 * vm_id, as VirtualMachine::parse_disks does; answers a refusal. */
static int take_disk_images(struct req *r, struct tmpl *sys, int vm_id)
{
    int *ids = xcalloc(sys->nr ? sys->nr : 1, sizeof(*ids));
    size_t n = 0;
    int disk_id = 0, rc = 0;
    char buf[256];

    for (size_t i = 0; i < sys->nr && rc == 0; i++) {
        struct tmpl_attr *a = &sys->attrs[i];
        const char *image;

        if (!streq(a->name, "DISK") || a->value)
            continue;
        snprintf(buf, sizeof(buf), "%d", disk_id++);
        tmpl_vector_set(a, "DISK_ID", buf);
        image = tmpl_vector_get(a, "IMAGE_ID");
        if (image && parse_id(image, &ids[n]) < 0) {
            reply_error(r, E_ALLOCATE, -1,
                        "Error allocating a new virtual machine. Wrong IMAGE_ID: %s", image);
            rc = -1;
        } else if (image) {
            n++;
        }
    }
    if (rc == 0 && images_acquire(r, ids, n, vm_id, buf, sizeof(buf)) < 0) {
        if (!r->answer)
            reply_error(r, E_ALLOCATE, -1, "Error allocating a new virtual machine. %s", buf);
        rc = -1;
    }
    free(ids);
    return rc;
}

/* VirtualMachine::insert: NAME, MEMORY, CPU, the known attributes. */
static void vm_allocate(struct req *r, struct tmpl *user, bool hold)
{
    _cleanup_free_ char *name = NULL;
    struct tmpl sys = TMPL_INIT;
    struct sbuf doc = SBUF_INIT;
    char buf[256];
    const char *problem;
    int id;

    if (!positive_number(tmpl_get(user, "MEMORY"), true)) {
        reply_error(r, E_ALLOCATE, -1,
                    "Error allocating a new virtual machine. MEMORY "
                    "attribute must be a positive integer value.");
        return;
    }
    if (!positive_number(tmpl_get(user, "CPU"), false)) {
        reply_error(r, E_ALLOCATE, -1,
                    "Error allocating a new virtual machine. CPU "
                    "attribute must be a positive float or integer value.");
        return;
    }
    name = xstrdup(tmpl_get(user, "NAME") ? tmpl_get(user, "NAME") : "");
    if (*name && (problem = name_invalid(name, buf, sizeof(buf)))) {
        reply_error(r, E_ALLOCATE, -1, "Error allocating a new virtual machine. %s", problem);
        return;
    }
    id = doc_next_id(r->dir, KIND_VM);
    if (id < 0) {
        reply_error(r, E_INTERNAL, -1, "stand-in: %s", fail_reason());
        fail_reset();
        return;
    }
    if (!*name) {
        free(name);
        name = xasprintf("one-%d", id);
    }
    tmpl_erase(user, "NAME");
    tmpl_erase(user, "VMID");
    for (size_t i = user->nr; i-- > 0;)
        if (is_template_attr(user->attrs[i].name))
            tmpl_take(&sys, user, i);
    if (take_disk_images(r, &sys, id) < 0) {
        if (doc_give_back_id(r->dir, KIND_VM, id) < 0)
            fail_reset(); /* the refusal is the answer; a gap in ids is harmless */
        tmpl_free(&sys);
        return;
    }
    snprintf(buf, sizeof(buf), "%d", r->user->uid);
    tmpl_set(&sys, "CREATED_BY", buf);
    snprintf(buf, sizeof(buf), "%d", id);
    tmpl_set(&sys, "VMID", buf);
    /* vm.xsd requires it; oned fills it in when the VM is scheduled */
    if (!tmpl_has(&sys, "TM_MAD_SYSTEM"))
        tmpl_set(&sys, "TM_MAD_SYSTEM", "");
    vm_document(r, &doc, id, name, hold, &sys, user);
    if (object_store(r, KIND_VM, id, doc.buf) == 0)
        reply_int(r, id);
    sbuf_release(&doc);
    tmpl_free(&sys);
}

void m_vm_allocate(struct req *r)
{
    _cleanup_free_ char *text = NULL, *err = NULL;
    struct tmpl user = TMPL_INIT;
    bool hold;

    if (param_str(r, 1, &text) < 0 || param_opt_bool(r, 2, false, &hold) < 0)
        return;
    if (tmpl_parse(&user, text, &err) < 0)
        reply_error(r, E_INTERNAL, -1, "%s", err);
    else
        vm_allocate(r, &user, hold);
    tmpl_free(&user);
}

/* ---- one.vmpool.info: VirtualMachine::to_xml_short ---- */

static void short_field(struct sbuf *out, const struct xml *vm, const char *name)
{
    _cleanup_free_ char *v = xml_get_def(vm, "", "/VM/%s", name);

    sbuf_addf(out, "<%s>", name);
    xml_escape(out, v);
    sbuf_addf(out, "</%s>", name);
}

static void short_cdata(struct sbuf *out, const char *name, const char *value)
{
    sbuf_addf(out, "<%s>", name);
    cdata(out, value ? value : "");
    sbuf_addf(out, "</%s>", name);
}

static void short_vector(struct sbuf *out, const struct tmpl_attr *a, const char *const *keys,
                         size_t n)
{
    sbuf_addf(out, "<%s>", a->name);
    for (size_t i = 0; i < n; i++)
        short_cdata(out, keys[i], tmpl_vector_get(a, keys[i]));
    sbuf_addf(out, "</%s>", a->name);
}

/* VirtualMachineNic::to_xml_short: the addresses present, then the rest. */
static void short_nic(struct sbuf *out, const struct tmpl_attr *a)
{
    static const char *const optional[] = { "IP",           "EXTERNAL_IP",        "IP6",
                                            "IP6_ULA",      "IP6_LINK",           "IP6_GLOBAL",
                                            "NETWORK_MODE", "SCHED_REQUIREMENTS", "SCHED_RANK" };
    static const char *const always[] = { "MAC", "NETWORK", "NETWORK_ID", "NIC_ID",
                                          "SECURITY_GROUPS" };

    sbuf_adds(out, "<NIC>");
    for (size_t i = 0; i < ARRAY_SIZE(optional); i++)
        if (!str_empty(tmpl_vector_get(a, optional[i])))
            short_cdata(out, optional[i], tmpl_vector_get(a, optional[i]));
    for (size_t i = 0; i < ARRAY_SIZE(always); i++)
        short_cdata(out, always[i], tmpl_vector_get(a, always[i]));
    sbuf_adds(out, "</NIC>");
}

static void short_template(struct sbuf *out, const struct xml *vm)
{
    static const char *const disk_keys[] = { "DISK_ID",
                                             "DATASTORE",
                                             "DATASTORE_ID",
                                             "IMAGE",
                                             "IMAGE_ID",
                                             "SIZE",
                                             "TYPE",
                                             "CLONE",
                                             "CLONE_TARGET",
                                             "LN_TARGET",
                                             "DISK_SNAPSHOT_TOTAL_SIZE" };
    static const char *const plain[] = { "CPU", "MEMORY", "VCPU" };
    struct tmpl t = TMPL_INIT;

    tmpl_from_doc(&t, vm, "/VM/TEMPLATE");
    sbuf_adds(out, "<TEMPLATE>");
    for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
        sbuf_addf(out, "<%s>", plain[i]);
        xml_escape(out, tmpl_get(&t, plain[i]) ? tmpl_get(&t, plain[i]) : "");
        sbuf_addf(out, "</%s>", plain[i]);
    }
    for (size_t i = 0; i < t.nr; i++)
        if (!t.attrs[i].value && streq(t.attrs[i].name, "DISK"))
            short_vector(out, &t.attrs[i], disk_keys, ARRAY_SIZE(disk_keys));
    for (size_t i = 0; i < t.nr; i++)
        if (!t.attrs[i].value && streq(t.attrs[i].name, "NIC"))
            short_nic(out, &t.attrs[i]);
    for (size_t i = 0; i < t.nr; i++) {
        if (!t.attrs[i].value && streq(t.attrs[i].name, "GRAPHICS")) {
            tmpl_attr_to_xml(&t.attrs[i], out);
            break;
        }
    }
    sbuf_adds(out, "</TEMPLATE>");
    tmpl_free(&t);
}

/* VirtualMachineTemplate::to_xml_short: what Sunstone and the scheduler use. */
static void short_user_template(struct sbuf *out, const struct xml *vm)
{
    static const char *const nonempty[] = { "LABELS", "ERROR", "SCHED_MESSAGE" };
    static const char *const present[] = { "SCHED_RANK", "SCHED_DS_RANK", "SCHED_REQUIREMENTS",
                                           "SCHED_DS_REQUIREMENTS", "USER_PRIORITY" };
    struct tmpl t = TMPL_INIT;

    tmpl_from_doc(&t, vm, "/VM/USER_TEMPLATE");
    if (!t.nr) {
        sbuf_adds(out, "<USER_TEMPLATE/>");
        return;
    }
    sbuf_adds(out, "<USER_TEMPLATE>");
    for (size_t i = 0; i < ARRAY_SIZE(nonempty); i++)
        if (!str_empty(tmpl_get(&t, nonempty[i])))
            short_cdata(out, nonempty[i], tmpl_get(&t, nonempty[i]));
    for (size_t i = 0; i < ARRAY_SIZE(present); i++)
        if (tmpl_get(&t, present[i]))
            short_cdata(out, present[i], tmpl_get(&t, present[i]));
    sbuf_adds(out, "</USER_TEMPLATE>");
    tmpl_free(&t);
}

static void short_history(struct sbuf *out, const struct xml *vm)
{
    static const char *const plain[] = { "OID", "SEQ" };
    static const char *const plain2[] = { "HID", "CID", "DS_ID" };
    static const char *const cd[] = { "VM_MAD", "TM_MAD", "ACTION" };
    int n = xml_count(vm, "/VM/HISTORY_RECORDS/HISTORY");
    _cleanup_free_ char *host = NULL;

    if (!n) {
        sbuf_adds(out, "<HISTORY_RECORDS/>");
        return;
    }
    sbuf_adds(out, "<HISTORY_RECORDS><HISTORY>");
    for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
        _cleanup_free_ char *v =
            xml_get_def(vm, "", "/VM/HISTORY_RECORDS/HISTORY[%d]/%s", n, plain[i]);

        sbuf_addf(out, "<%s>%s</%s>", plain[i], v, plain[i]);
    }
    host = xml_get_def(vm, "", "/VM/HISTORY_RECORDS/HISTORY[%d]/HOSTNAME", n);
    short_cdata(out, "HOSTNAME", host);
    for (size_t i = 0; i < ARRAY_SIZE(plain2); i++) {
        _cleanup_free_ char *v =
            xml_get_def(vm, "", "/VM/HISTORY_RECORDS/HISTORY[%d]/%s", n, plain2[i]);

        sbuf_addf(out, "<%s>%s</%s>", plain2[i], v, plain2[i]);
    }
    for (size_t i = 0; i < ARRAY_SIZE(cd); i++) {
        _cleanup_free_ char *v =
            xml_get_def(vm, "", "/VM/HISTORY_RECORDS/HISTORY[%d]/%s", n, cd[i]);

        short_cdata(out, cd[i], v);
    }
    sbuf_adds(out, "</HISTORY></HISTORY_RECORDS>");
}

static void emit_short_vm(struct sbuf *out, const char *text, const struct xml *vm)
{
    static const char *const head[] = { "ID",    "UID",       "GID",      "UNAME",     "GNAME",
                                        "NAME",  "LAST_POLL", "STATE",    "LCM_STATE", "RESCHED",
                                        "STIME", "ETIME",     "DEPLOY_ID" };
    _cleanup_free_ char *lock = xml_get(vm, "/VM/LOCK/LOCKED");
    _cleanup_free_ char *cpu = xml_get(vm, "/VM/MONITORING/CPU");
    _cleanup_free_ char *mem = xml_get(vm, "/VM/MONITORING/MEMORY");
    _cleanup_free_ char *st = xml_get(vm, "/VM/MONITORING/STATE");

    (void)text;
    sbuf_adds(out, "<VM>");
    for (size_t i = 0; i < ARRAY_SIZE(head); i++)
        short_field(out, vm, head[i]);
    if (lock)
        sbuf_addf(out, "<LOCK><LOCKED>%s</LOCKED></LOCK>", lock);
    short_template(out, vm);
    if (xml_count(vm, "/VM/MONITORING/*") == 0) {
        sbuf_adds(out, "<MONITORING/>");
    } else {
        sbuf_adds(out, "<MONITORING>");
        short_cdata(out, "CPU", cpu);
        short_cdata(out, "MEMORY", mem);
        short_cdata(out, "STATE", st);
        sbuf_adds(out, "</MONITORING>");
    }
    short_user_template(out, vm);
    short_history(out, vm);
    sbuf_adds(out, "</VM>");
}

struct vm_filter {
    int filter, state;
};

static bool keep_vm(struct req *r, const struct xml *vm, void *ctx)
{
    const struct vm_filter *f = ctx;
    long long state = doc_ll(vm, "/VM/STATE", -1);

    if (f->state == -1 && state == VM_DONE)
        return false;
    if (f->state >= 0 && state != f->state)
        return false;
    return pool_shows(r, vm, "VM", f->filter);
}

void m_vmpool_info(struct req *r)
{
    _cleanup_free_ char *query = NULL;
    struct vm_filter f;
    struct sbuf out = SBUF_INIT;
    int start, end;

    if (param_int(r, 1, &f.filter) < 0 || param_int(r, 2, &start) < 0 ||
        param_int(r, 3, &end) < 0 || param_int(r, 4, &f.state) < 0)
        return;
    if (r->nparams > 5 && param_str(r, 5, &query) < 0)
        return;
    if (!str_empty(query))
        reply_error(r, E_INTERNAL, -1, "JSON query search is not supported by the SQL backend");
    else if (f.state < -2 || f.state > VM_CLONING_FAILURE)
        reply_error(r, E_RPC_API, -1, "Incorrect state filter %d", f.state);
    else if (f.filter < -4)
        reply_error(r, E_RPC_API, -1, "Incorrect filter_flag");
    else {
        sbuf_adds(&out, "<VM_POOL>");
        pool_select(r, KIND_VM, start, end, keep_vm, &f, &out, emit_short_vm);
        sbuf_adds(&out, "</VM_POOL>");
        reply_str(r, out.buf);
    }
    sbuf_release(&out);
}

