/*
 * standin_image.c - one.image.*, one.imagepool.info, one.datastore.info and
 * one.user.info of the oned stand-in, after src/rm/api/ImageAPI.cc,
 * SharedAPI.cc, src/image/{Image,ImagePool,ImageManagerActions}.cc of
 * OpenNebula 7.5 (the version of the captures).
 *
 * The stand-in runs no datastore driver: an image registered from a PATH or
 * created empty stays LOCKED (a test moves it on with standin-ctl), one
 * registered with SOURCE is READY at once as in oned, and one.image.delete
 * drops the object without any DS rm (no file is touched).
 */

#include "standin_api.h"

#include <ctype.h>
#include <time.h>

#include <openssl/evp.h>

#include "cleanup.h"
#include "log.h"
#include "num.h"

enum {
    IMG_OS,
    IMG_CDROM,
    IMG_DATABLOCK,
    IMG_KERNEL,
    IMG_RAMDISK,
    IMG_CONTEXT,
    IMG_BACKUP,
    IMG_FILESYSTEM,
};

/* Image states (include/Image.h). */
enum {
    IS_READY = 1,
    IS_USED = 2,
    IS_LOCKED = 4,
    IS_CLONE = 6,
    IS_USED_PERS = 8,
    IS_LOCKED_USED = 9,
    IS_LOCKED_USED_PERS = 10,
};

/* Datastore::DatastoreType */
enum { DS_IMAGE, DS_SYSTEM, DS_FILE, DS_BACKUP };

/* IMAGE_RESTRICTED_ATTR of the stock oned.conf. */
static const char *const image_restricted[] = { "SOURCE" };

static const char *const type_names[] = { "OS",      "CDROM",   "DATABLOCK", "KERNEL",
                                          "RAMDISK", "CONTEXT", "BACKUP",    "FILESYSTEM" };

int image_type(const char *s)
{
    for (size_t i = 0; i < ARRAY_SIZE(type_names); i++)
        if (strcasecmp(s, type_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *image_type_str(int type)
{
    return type >= 0 && (size_t)type < ARRAY_SIZE(type_names) ? type_names[type] : "";
}

static void internal_error(struct req *r, int resp_id)
{
    reply_error(r, E_INTERNAL, resp_id, "stand-in: %s", fail_reason());
    fail_reset();
}

/* ---- creating images ---- */

/* PoolSQL::exist(name, uid): names are unique per owner. */
static int image_named(struct req *r, const char *name, int uid)
{
    _cleanup_free_ int *ids = NULL;
    size_t n;
    int found = -1;

    doc_ids(r->dir, KIND_IMAGE, &ids, &n);
    for (size_t i = 0; i < n && found < 0; i++) {
        struct xml *img = doc_load(r->dir, KIND_IMAGE, ids[i]);
        _cleanup_free_ char *iname = img ? xml_get(img, "/IMAGE/NAME") : NULL;

        if (img && streq(iname, name) && doc_ll(img, "/IMAGE/UID", -1) == uid)
            found = ids[i];
        xml_free(img);
        fail_reset();
    }
    return found;
}

const char *image_name_problem(struct req *r, const char *name, int uid, char *buf, size_t len)
{
    const char *bad = name_invalid(name, buf, len);
    int other;

    if (bad)
        return bad;
    other = image_named(r, name, uid);
    if (other < 0)
        return NULL;
    snprintf(buf, len, "NAME is already taken by IMAGE %d.", other);
    return buf;
}

static void cdata_field(struct sbuf *out, const char *name, const char *value)
{
    sbuf_addf(out, "<%s>", name);
    cdata(out, value ? value : "");
    sbuf_addf(out, "</%s>", name);
}

static void text_field(struct sbuf *out, const char *name, const char *value)
{
    sbuf_addf(out, "<%s>", name);
    xml_escape(out, value);
    sbuf_addf(out, "</%s>", name);
}

/* Image::to_xml, element for element. */
static void image_document(struct req *r, struct sbuf *doc, int id, const struct new_image *ni)
{
    _cleanup_free_ char *gname = group_name(&r->users, r->user->gid);
    long long now = (long long)time(NULL);

    sbuf_addf(doc, "<IMAGE><ID>%d</ID><UID>%d</UID><GID>%d</GID>", id, r->user->uid, r->user->gid);
    text_field(doc, "UNAME", r->user->name);
    text_field(doc, "GNAME", gname);
    text_field(doc, "NAME", ni->name);
    default_permissions(doc);
    sbuf_addf(doc,
              "<TYPE>%d</TYPE><DISK_TYPE>%d</DISK_TYPE><PERSISTENT>%d</PERSISTENT>"
              "<REGTIME>%lld</REGTIME><MODTIME>%lld</MODTIME>",
              ni->type, ni->disk_type, ni->persistent ? 1 : 0, now, now);
    cdata_field(doc, "SOURCE", ni->source);
    cdata_field(doc, "PATH", ni->path);
    cdata_field(doc, "FORMAT", ni->format);
    cdata_field(doc, "FS", ni->fs);
    sbuf_addf(doc,
              "<SIZE>%lld</SIZE><STATE>%d</STATE><PREV_STATE>%d</PREV_STATE>"
              "<RUNNING_VMS>0</RUNNING_VMS><CLONING_OPS>0</CLONING_OPS>"
              "<CLONING_ID>-1</CLONING_ID><TARGET_SNAPSHOT>-1</TARGET_SNAPSHOT>"
              "<DATASTORE_ID>%d</DATASTORE_ID>",
              ni->size_mb, ni->state, ni->state, ni->ds_id);
    text_field(doc, "DATASTORE", ni->ds_name);
    sbuf_adds(doc, "<VMS></VMS><CLONES></CLONES><APP_CLONES></APP_CLONES>");
    tmpl_to_xml(ni->tmpl, "TEMPLATE", doc);
    sbuf_adds(doc, "<SNAPSHOTS><ALLOW_ORPHANS><![CDATA[NO]]></ALLOW_ORPHANS>"
                   "<CURRENT_BASE><![CDATA[-1]]></CURRENT_BASE>"
                   "<NEXT_SNAPSHOT><![CDATA[0]]></NEXT_SNAPSHOT></SNAPSHOTS>"
                   "<BACKUP_INCREMENTS></BACKUP_INCREMENTS>"
                   "<BACKUP_DISK_IDS></BACKUP_DISK_IDS></IMAGE>");
}

int image_create(struct req *r, const struct new_image *ni)
{
    struct sbuf doc = SBUF_INIT;
    int id = doc_next_id(r->dir, KIND_IMAGE);

    if (id < 0) {
        internal_error(r, -1);
        return -1;
    }
    image_document(r, &doc, id, ni);
    if (object_store(r, KIND_IMAGE, id, doc.buf) < 0 ||
        datastore_images(r, ni->ds_id, id, true) < 0)
        id = -1;
    sbuf_release(&doc);
    return id;
}

/* ---- one.image.info, one.datastore.info ---- */

void m_image_info(struct req *r)
{
    bool decrypt;
    int id;

    if (param_int(r, 1, &id) < 0 || param_opt_bool(r, 2, false, &decrypt) < 0)
        return;
    object_info(r, KIND_IMAGE, id);
}

void m_datastore_info(struct req *r)
{
    bool decrypt;
    int id;

    if (param_int(r, 1, &id) < 0 || param_opt_bool(r, 2, false, &decrypt) < 0)
        return;
    object_info(r, KIND_DATASTORE, id);
}

/* ---- one.image.allocate ---- */

struct alloc {
    struct tmpl t;
    int ds_id;
    bool skip_capacity;
    int type;
    const char *type_str;
    long long size;
    struct xml *ds;
    char *source, *path;
};

static bool template_size(const struct tmpl *t, long long *size)
{
    const char *s = tmpl_get(t, "SIZE");
    int64_t v;

    if (!s || parse_i64(s, INT64_MIN, INT64_MAX, &v) < 0)
        return false;
    *size = v;
    return true;
}

/* What the DS driver's STAT would answer for PATH: SIZE when the template
 * has one, else the file's size in MB, rounded up. */
static const char *stat_path(const struct alloc *a, long long *size, char *buf, size_t len)
{
    struct stat st;

    if (template_size(&a->t, size))
        return NULL;
    if (stat(a->path, &st) < 0) {
        snprintf(buf, len, "Cannot stat %s: %s", a->path, strerror(errno));
        return buf;
    }
    *size = (st.st_size + (1 << 20) - 1) >> 20;
    return NULL;
}

/* ImageManager::stat_image: NULL and a->size, or the reason. */
static const char *image_size(struct alloc *a, char *buf, size_t len)
{
    static const char wrong[] = "Wrong number or missing SIZE attribute.";

    switch (a->type) {
    case IMG_FILESYSTEM:
        return !*a->path ? "Missing PATH attribute." : stat_path(a, &a->size, buf, len);
    case IMG_BACKUP:
        return template_size(&a->t, &a->size) ? NULL : "";
    case IMG_CDROM:
    case IMG_KERNEL:
    case IMG_RAMDISK:
    case IMG_CONTEXT:
        if (*a->source)
            return template_size(&a->t, &a->size) ? NULL : wrong;
        if (!*a->path) {
            snprintf(buf, len, "Either PATH or SOURCE are required for %s", a->type_str);
            return buf;
        }
        return stat_path(a, &a->size, buf, len);
    default: /* OS, DATABLOCK */
        if (*a->source || !*a->path)
            return template_size(&a->t, &a->size) ? NULL : wrong;
        return stat_path(a, &a->size, buf, len);
    }
}

/* ImagePool::allocate: the image type against the datastore type. */
static const char *type_mismatch(int type, long long ds_type)
{
    switch (type) {
    case IMG_KERNEL:
    case IMG_RAMDISK:
    case IMG_CONTEXT:
        return ds_type == DS_FILE ? NULL
                                  : "IMAGES of type KERNEL, RAMDISK and CONTEXT cannot be "
                                    "registered in an IMAGE_DS datastore";
    case IMG_BACKUP:
        return ds_type == DS_BACKUP ? NULL
                                    : "IMAGES of type BACKUP can only be registered in an "
                                      "BACKUP_DS datastore";
    default:
        return ds_type == DS_IMAGE ? NULL
                                   : "Only IMAGES of type KERNEL, RAMDISK and CONTEXT can be "
                                     "registered in a FILE_DS datastore";
    }
}

/* Image::insert's checks of PATH, SOURCE and FORMAT. */
static const char *insert_problem(const struct alloc *a)
{
    const char *format = tmpl_get(&a->t, "FORMAT");

    if (*a->source && *a->path)
        return "PATH and SOURCE cannot be both set.";
    if (*a->source && str_empty(format))
        return "SOURCE needs FORMAT to be set.";
    if (!*a->source && a->type == IMG_BACKUP)
        return "SOURCE cannot be empty for BACKUP images";
    if (!*a->source && !*a->path &&
        (a->type == IMG_CDROM || a->type == IMG_KERNEL || a->type == IMG_RAMDISK ||
         a->type == IMG_CONTEXT))
        return "No PATH nor SOURCE in template.";
    return NULL;
}

/* The checks ImagePool::allocate and Image::insert make, as ALLOCATE. */
static bool allocate_checks(struct req *r, struct alloc *a)
{
    const char *name = tmpl_get(&a->t, "NAME");
    const char *problem;
    char buf[512];

    problem = image_name_problem(r, name ? name : "", r->user->uid, buf, sizeof(buf));
    if (!problem && a->type >= 0)
        problem = type_mismatch(a->type, doc_ll(a->ds, "/DATASTORE/TYPE", DS_IMAGE));
    if (!problem && a->type < 0) {
        snprintf(buf, sizeof(buf), "Unknown type %s", a->type_str);
        problem = buf;
    }
    if (!problem)
        problem = insert_problem(a);
    if (problem)
        reply_error(r, E_ALLOCATE, -1, "Error allocating a new image. %s", problem);
    return !problem;
}

/* FORMAT and DRIVER as Image::insert settles them. */
static char *image_format(struct alloc *a)
{
    _cleanup_free_ char *ds_driver = xml_get(a->ds, "/DATASTORE/TEMPLATE/DRIVER");
    const char *format = tmpl_get(&a->t, "FORMAT");

    tmpl_erase(&a->t, "DRIVER");
    if (*a->source)
        return xstrdup(format);
    if (*a->path)
        return xstrdup(""); /* the DS cp tells it */
    if (a->type == IMG_FILESYSTEM)
        return xstrdup("dir");
    if (!str_empty(ds_driver)) { /* an empty image made by mkfs */
        tmpl_set(&a->t, "DRIVER", ds_driver);
        return xstrdup(ds_driver);
    }
    return xstrdup(str_empty(format) ? "raw" : format);
}

static void allocate_image(struct req *r, struct alloc *a)
{
    _cleanup_free_ char *ds_name = xml_get_def(a->ds, "", "/DATASTORE/NAME");
    _cleanup_free_ char *name = xstrdup(tmpl_get(&a->t, "NAME"));
    _cleanup_free_ char *fs = xstrdup(tmpl_get(&a->t, "FS") ? tmpl_get(&a->t, "FS") : "");
    _cleanup_free_ char *format = image_format(a);
    const char *pers = tmpl_get(&a->t, "PERSISTENT");
    const char *prefix = tmpl_get(&a->t, "DEV_PREFIX");
    struct new_image ni = {
        .name = name,
        .type = a->type,
        .source = a->source,
        .path = a->path,
        .format = format,
        .fs = fs,
        .size_mb = a->size,
        .ds_id = a->ds_id,
        .ds_name = ds_name,
        .tmpl = &a->t,
        .persistent =
            (a->type == IMG_OS || a->type == IMG_DATABLOCK) && pers && strcasecmp(pers, "YES") == 0,
        .disk_type = (int)doc_ll(a->ds, "/DATASTORE/DISK_TYPE", 0),
        /* register_image unlocks an image given a SOURCE at once */
        .state = *a->source || a->type == IMG_BACKUP ? IS_READY : IS_LOCKED,
    };
    static const char *const erased[] = { "NAME", "TYPE",   "PERSISTENT", "SIZE",  "FS",
                                          "PATH", "SOURCE", "FORMAT",     "TM_MAD" };
    int id;

    if (a->type == IMG_OS || a->type == IMG_DATABLOCK) {
        if (str_empty(prefix))
            tmpl_set(&a->t, "DEV_PREFIX", "sd"); /* DEFAULT_DEVICE_PREFIX */
    } else {
        tmpl_erase(&a->t, "DEV_PREFIX");
    }
    for (size_t i = 0; i < ARRAY_SIZE(erased); i++)
        tmpl_erase(&a->t, erased[i]);
    id = image_create(r, &ni);
    if (id >= 0)
        reply_int(r, id);
}

/* ImageAllocateAPI::allocate after the template and datastore are known. */
static void image_allocate(struct req *r, struct alloc *a)
{
    char buf[512];
    const char *why = image_size(a, buf, sizeof(buf));
    char size[32];
    const char *pers = tmpl_get(&a->t, "PERSISTENT");
    _cleanup_free_ char *ponly = xml_get(a->ds, "/DATASTORE/TEMPLATE/PERSISTENT_ONLY");

    if (why) {
        reply_error(r, E_INTERNAL, -1, "Cannot parse image SIZE: %s", why);
        return;
    }
    if (!a->skip_capacity && a->size > doc_ll(a->ds, "/DATASTORE/FREE_MB", LLONG_MAX)) {
        reply_error(r, E_ACTION, -1, "Not enough space in datastore");
        return;
    }
    snprintf(size, sizeof(size), "%lld", a->size);
    tmpl_set(&a->t, "SIZE", size);
    if (!r->admin && tmpl_has(&a->t, "SOURCE")) {
        reply_denied(r, -1, "Template includes a restricted attribute SOURCE");
        return;
    }
    if (!authorize(r, a->ds, "DATASTORE", OP_USE, a->ds_id, -1))
        return;
    if (ponly && strcasecmp(ponly, "YES") == 0 && !(pers && strcasecmp(pers, "YES") == 0)) {
        reply_error(r, E_ALLOCATE, -1,
                    "Error allocating a new image. This Datastore only accepts persistent images.");
        return;
    }
    if (allocate_checks(r, a))
        allocate_image(r, a);
}

static void image_allocate_in(struct req *r, struct alloc *a)
{
    _cleanup_free_ char *ds_text = NULL;
    const char *type = tmpl_get(&a->t, "TYPE");
    long long ds_type;

    a->ds = object_load(r, KIND_DATASTORE, a->ds_id, &ds_text);
    if (!a->ds)
        return;
    ds_type = doc_ll(a->ds, "/DATASTORE/TYPE", DS_IMAGE);
    if (ds_type == DS_SYSTEM || ds_type == DS_BACKUP) {
        reply_error(r, E_ALLOCATE, -1,
                    "Error allocating a new image. New images can only be "
                    "allocated in a files or image datastore.");
        return;
    }
    a->type_str = str_empty(type) ? "OS" : type; /* DEFAULT_IMAGE_TYPE */
    a->type = image_type(a->type_str);
    a->source = xstrdup(tmpl_get(&a->t, "SOURCE") ? tmpl_get(&a->t, "SOURCE") : "");
    a->path = xstrdup(tmpl_get(&a->t, "PATH") ? tmpl_get(&a->t, "PATH") : "");
    image_allocate(r, a);
}

void m_image_allocate(struct req *r)
{
    _cleanup_free_ char *text = NULL, *err = NULL;
    struct alloc a = { .t = TMPL_INIT };

    if (param_str(r, 1, &text) < 0 || param_int(r, 2, &a.ds_id) < 0 ||
        param_opt_bool(r, 3, false, &a.skip_capacity) < 0)
        return;
    a.skip_capacity = a.skip_capacity && r->admin; /* honoured for oneadmin only */
    if (tmpl_parse(&a.t, text, &err) < 0)
        reply_error(r, E_INTERNAL, -1, "%s", err);
    else
        image_allocate_in(r, &a);
    xml_free(a.ds);
    free(a.source);
    free(a.path);
    tmpl_free(&a.t);
}

/* ---- one.image.update ---- */

static int update_template(struct req *r, const struct xml *img, char **text, const char *tmpl_text,
                           int append)
{
    _cleanup_free_ char *err = NULL;
    struct tmpl cur = TMPL_INIT, new_t = TMPL_INIT;
    struct sbuf el = SBUF_INIT;
    const char *ra = NULL;
    char *out = NULL;

    if (tmpl_parse(&new_t, tmpl_text, &err) < 0) {
        reply_error(r, E_INTERNAL, -1, "Cannot update template. %s", err);
        goto out;
    }
    tmpl_from_doc(&cur, img, "/IMAGE/TEMPLATE");
    if (!r->admin)
        ra = tmpl_check_restricted(&new_t, &cur, append == 1, image_restricted,
                                   ARRAY_SIZE(image_restricted));
    if (ra) {
        reply_error(r, E_INTERNAL, -1,
                    append ? "Cannot update template. User Template includes a restricted "
                             "attribute %s"
                           : "Cannot update template. Tried to change restricted attribute: %s",
                    ra);
        goto out;
    }
    if (append)
        tmpl_merge(&cur, &new_t);
    tmpl_to_xml(append ? &cur : &new_t, "TEMPLATE", &el);
    out = doc_replace_child(*text, "TEMPLATE", el.buf);
    if (!out)
        internal_error(r, -1);
out:
    sbuf_release(&el);
    tmpl_free(&cur);
    tmpl_free(&new_t);
    if (!out)
        return -1;
    free(*text);
    *text = out;
    return 0;
}

void m_image_update(struct req *r)
{
    _cleanup_free_ char *tmpl_text = NULL, *text = NULL;
    struct xml *img;
    int id, append;

    if (param_int(r, 1, &id) < 0 || param_str(r, 2, &tmpl_text) < 0 ||
        param_opt_int(r, 3, 0, &append) < 0)
        return;
    img = object_load(r, KIND_IMAGE, id, &text);
    if (!img)
        return;
    if (!authorize(r, img, "IMAGE", OP_MANAGE, id, -1))
        ;
    else if (append < 0 || append > 1)
        reply_error(r, E_RPC_API, -1, "Wrong update type");
    else if (update_template(r, img, &text, tmpl_text, append) == 0 &&
             object_store(r, KIND_IMAGE, id, text) == 0)
        reply_int(r, id);
    xml_free(img);
}

/* ---- one.image.chown ---- */

/* AuthRequest for SharedAPI::chown: MANAGE the image, MANAGE the new owner,
 * USE the new group. A non-administrator can only give an image to its own
 * group. */
static bool chown_authorized(struct req *r, const struct xml *img, int id, int uid, int gid)
{
    struct sbuf why = SBUF_INIT;
    bool ok;

    if (!may(r, img, "IMAGE", OP_MANAGE))
        sbuf_addf(&why, "Not authorized to perform MANAGE IMAGE [%d]", id);
    if (uid > -1 && !r->admin)
        sbuf_addf(&why, "%sNot authorized to perform MANAGE USER [%d]", why.len ? "; " : "", uid);
    if (gid > -1 && !r->admin && gid != r->user->gid)
        sbuf_addf(&why, "%sNot authorized to perform USE GROUP [%d]", why.len ? "; " : "", gid);
    ok = !why.len;
    if (!ok)
        reply_denied(r, -1, why.buf);
    sbuf_release(&why);
    return ok;
}

static void image_chown(struct req *r, const struct xml *img, char **text, int id, int uid, int gid)
{
    _cleanup_free_ char *name = xml_get_def(img, "", "/IMAGE/NAME");
    int other;

    if (uid == doc_ll(img, "/IMAGE/UID", -1)) /* the same owner: ignored */
        uid = -1;
    if (gid == doc_ll(img, "/IMAGE/GID", -1))
        gid = -1;
    if (!chown_authorized(r, img, id, uid, gid))
        return;
    if (uid > -1 && (other = image_named(r, name, uid)) >= 0) {
        reply_error(r, E_INTERNAL, -1, "user [%d] already owns image [%d] with NAME %s", uid, other,
                    name);
        return;
    }
    if (uid > -1 && (doc_edit_child_int(text, "UID", uid) < 0 ||
                     doc_edit_child(text, "UNAME", user_by_id(&r->users, uid)->name) < 0)) {
        internal_error(r, id);
        return;
    }
    if (gid > -1) {
        _cleanup_free_ char *gname = group_name(&r->users, gid);

        if (doc_edit_child_int(text, "GID", gid) < 0 || doc_edit_child(text, "GNAME", gname) < 0) {
            internal_error(r, id);
            return;
        }
    }
    if (object_store(r, KIND_IMAGE, id, *text) == 0)
        reply_int(r, id);
}

void m_image_chown(struct req *r)
{
    _cleanup_free_ char *text = NULL;
    struct xml *img;
    int id, uid, gid;

    if (param_int(r, 1, &id) < 0 || param_int(r, 2, &uid) < 0 || param_int(r, 3, &gid) < 0)
        return;
    /* the new owner and group are checked before the image */
    if (uid > -1 && !user_by_id(&r->users, uid)) {
        reply_no_exists(r, "user", uid);
        return;
    }
    if (gid > -1 && !group_exists(&r->users, gid)) {
        reply_no_exists(r, "group", gid);
        return;
    }
    img = object_load(r, KIND_IMAGE, id, &text);
    if (img)
        image_chown(r, img, &text, id, uid, gid);
    xml_free(img);
}

/* ---- the disks of a new VM: ImageManager::acquire_image (attach = false) ---- */

static const char *const state_names[] = { "INIT",   "READY",     "USED",        "DISABLED",
                                           "LOCKED", "ERROR",     "CLONE",       "DELETE",
                                           "USED_PERS", "LOCKED_USED", "LOCKED_USED_PERS" };

/* The state the image takes with one more VM; -1 with oned's refusal in
 * buf. A LOCKED image (a save in progress) may be taken: the VM waits. */
static int acquired_state(const struct xml *img, int id, char *buf, size_t len)
{
    long long state = doc_ll(img, "/IMAGE/STATE", -1), type = doc_ll(img, "/IMAGE/TYPE", -1);
    bool pers = doc_ll(img, "/IMAGE/PERSISTENT", 0) == 1;
    _cleanup_free_ char *ptype = xml_get_def(img, "", "/IMAGE/TEMPLATE/PERSISTENT_TYPE");
    _cleanup_free_ char *name = xml_get_def(img, "", "/IMAGE/NAME");

    if (type == IMG_KERNEL || type == IMG_RAMDISK || type == IMG_CONTEXT || type == IMG_BACKUP) {
        snprintf(buf, len, "Image %d (%s) of type %s cannot be used as DISK.", id, name,
                 image_type_str((int)type));
        return -1;
    }
    switch (state) {
    case IS_READY:
        return pers ? IS_USED_PERS : IS_USED;
    case IS_LOCKED:
        return pers ? IS_LOCKED_USED_PERS : IS_LOCKED_USED;
    case IS_USED_PERS:
    case IS_LOCKED_USED_PERS:
        if (strcasecmp(ptype, "SHAREABLE") != 0) {
            snprintf(buf, len, "Cannot acquire image %d, it is persistent and already in use",
                     id);
            return -1;
        }
        return (int)state;
    case IS_USED:
    case IS_LOCKED_USED:
        return (int)state;
    default:
        snprintf(buf, len, "Cannot acquire image %d, it is in state: %s", id,
                 state >= 0 && (size_t)state < ARRAY_SIZE(state_names) ? state_names[state]
                                                                       : "?");
        return -1;
    }
}

/* The image's document with VM vm_id among its users. */
static char *with_user_vm(const struct xml *img, const char *text, int state, int vm_id)
{
    struct strvec vms = STRVEC_INIT;
    struct sbuf ids = SBUF_INIT;
    char *t1, *t2, *t3;

    xml_get_all(img, &vms, "/IMAGE/VMS/ID");
    sbuf_adds(&ids, "<VMS>");
    for (size_t i = 0; i < vms.nr; i++)
        sbuf_addf(&ids, "<ID>%s</ID>", vms.v[i]);
    sbuf_addf(&ids, "<ID>%d</ID></VMS>", vm_id);
    t1 = doc_set_child_int(text, "STATE", state);
    t2 = doc_set_child_int(t1, "RUNNING_VMS", (long long)vms.nr + 1);
    t3 = doc_replace_child(t2, "VMS", ids.buf);
    free(t1);
    free(t2);
    sbuf_release(&ids);
    strvec_clear(&vms);
    return t3;
}

int images_acquire(struct req *r, const int *image_ids, size_t n, int vm_id, char *buf,
                   size_t len)
{
    char **texts = xcalloc(n ? n : 1, sizeof(*texts));
    int *states = xcalloc(n ? n : 1, sizeof(*states));
    int rc = 0;

    /* every image is checked before any is changed: a refusal leaves all
     * of them as they were, as oned's release on a failed allocate does */
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct xml *img;

        texts[i] = doc_read(r->dir, KIND_IMAGE, image_ids[i]);
        img = texts[i] ? xml_doc_parse(texts[i], strlen(texts[i]), "IMAGE") : NULL;
        if (!img) {
            fail_reset();
            snprintf(buf, len, "Image with ID: %d does not exist", image_ids[i]);
            rc = -1;
        } else if (!authorize(r, img, "IMAGE", OP_USE, image_ids[i], -1)) {
            rc = -1; /* answered */
        } else if ((states[i] = acquired_state(img, image_ids[i], buf, len)) < 0) {
            rc = -1;
        } else {
            char *t = with_user_vm(img, texts[i], states[i], vm_id);

            free(texts[i]);
            texts[i] = t;
        }
        xml_free(img);
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        if (doc_write(r->dir, KIND_IMAGE, image_ids[i], texts[i]) < 0)
            rc = -1;
    if (rc < 0 && failed()) {
        snprintf(buf, len, "stand-in: %s", fail_reason());
        fail_reset();
    }
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(states);
    return rc;
}

/* ---- one.image.delete ---- */

/* ImageManager::delete_image's refusals; NULL when the image may go. */
static const char *delete_problem(const struct xml *img, char *buf, size_t len)
{
    long long state = doc_ll(img, "/IMAGE/STATE", 0);
    long long running = doc_ll(img, "/IMAGE/RUNNING_VMS", 0);
    long long type = doc_ll(img, "/IMAGE/TYPE", 0);

    if ((state == IS_READY && running && type != IMG_BACKUP) || state == IS_USED ||
        state == IS_USED_PERS || state == IS_LOCKED_USED || state == IS_LOCKED_USED_PERS) {
        snprintf(buf, len, "There are %lld VMs using it.", running);
        return buf;
    }
    if (state == IS_CLONE) {
        snprintf(buf, len, "There are %lld active clone operations.",
                 doc_ll(img, "/IMAGE/CLONING_OPS", 0));
        return buf;
    }
    return NULL;
}

static void image_delete(struct req *r, const struct xml *img, int id, bool force)
{
    _cleanup_free_ char *saving = xml_get(img, "/IMAGE/TEMPLATE/SAVE_AS_HOT");
    _cleanup_free_ char *vm = xml_get(img, "/IMAGE/TEMPLATE/SAVED_VM_ID");
    bool locked = xml_count(img, "/IMAGE/LOCK") > 0;
    const char *problem;
    char buf[128];
    int vm_id;

    if (locked && !force) {
        reply_error(r, E_INTERNAL, id,
                    "Image locked, use --force flag to remove the image. "
                    "Force delete may leave some files on Datastore");
        return;
    }
    if (!authorize(r, img, "IMAGE", locked ? OP_ADMIN : OP_MANAGE, id, -1))
        return;
    if ((problem = delete_problem(img, buf, sizeof(buf)))) {
        reply_error(r, E_ACTION, -1, "Cannot delete image. %s", problem);
        return;
    }
    if (doc_delete(r->dir, KIND_IMAGE, id) < 0 ||
        datastore_images(r, (int)doc_ll(img, "/IMAGE/DATASTORE_ID", -1), id, false) < 0) {
        if (!r->answer)
            internal_error(r, id);
        return;
    }
    /* a LOCKED save-as target: the VM leaves its save-as state, the copy is
     * not cancelled (protocol §3.1) */
    if (doc_ll(img, "/IMAGE/STATE", 0) == IS_LOCKED && saving && vm && parse_id(vm, &vm_id) == 0 &&
        vm_clear_saveas(r, vm_id) < 0)
        return;
    reply_int(r, id);
}

void m_image_delete(struct req *r)
{
    _cleanup_free_ char *text = NULL;
    struct xml *img;
    bool force;
    int id;

    if (param_int(r, 1, &id) < 0 || param_opt_bool(r, 2, false, &force) < 0)
        return;
    img = object_load(r, KIND_IMAGE, id, &text);
    if (img)
        image_delete(r, img, id, force);
    xml_free(img);
}

/* ---- one.imagepool.info ---- */

static bool keep_image(struct req *r, const struct xml *img, void *ctx)
{
    return pool_shows(r, img, "IMAGE", *(const int *)ctx);
}

static void emit_document(struct sbuf *out, const char *text, const struct xml *doc)
{
    (void)doc;
    sbuf_adds(out, text);
}

void m_imagepool_info(struct req *r)
{
    struct sbuf out = SBUF_INIT;
    int filter, start, end;

    if (param_int(r, 1, &filter) < 0 || param_int(r, 2, &start) < 0 || param_int(r, 3, &end) < 0)
        return;
    if (filter < -4) {
        reply_error(r, E_RPC_API, -1, "Incorrect filter_flag");
        return;
    }
    sbuf_adds(&out, "<IMAGE_POOL>");
    pool_select(r, KIND_IMAGE, start, end, keep_image, &filter, &out, emit_document);
    sbuf_adds(&out, "</IMAGE_POOL>");
    reply_str(r, out.buf);
    sbuf_release(&out);
}

/* ---- one.user.info ---- */

/* The PASSWORD oned stores for core authentication: sha256, hex. */
static void password_hash(struct sbuf *out, const char *password)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (!EVP_Digest(password, strlen(password), md, &n, EVP_sha256(), NULL))
        n = 0;
    for (unsigned int i = 0; i < n; i++)
        sbuf_addf(out, "%02x", md[i]);
}

/* A USER document for a users-file entry without DIR/user/<id>.xml. */
static char *user_document(struct req *r, const struct user *u)
{
    _cleanup_free_ char *gname = group_name(&r->users, u->gid);
    struct sbuf doc = SBUF_INIT, hash = SBUF_INIT;
    static const char quotas[] = "<DATASTORE_QUOTA></DATASTORE_QUOTA>"
                                 "<NETWORK_QUOTA></NETWORK_QUOTA><VM_QUOTA></VM_QUOTA>"
                                 "<IMAGE_QUOTA></IMAGE_QUOTA>";

    password_hash(&hash, u->password);
    sbuf_addf(&doc, "<USER><ID>%d</ID><GID>%d</GID><GROUPS><ID>%d</ID></GROUPS>", u->uid, u->gid,
              u->gid);
    text_field(&doc, "GNAME", gname);
    text_field(&doc, "NAME", u->name);
    cdata_field(&doc, "PASSWORD", hash.buf);
    cdata_field(&doc, "AUTH_DRIVER", "core");
    sbuf_addf(&doc,
              "<ENABLED>1</ENABLED><TEMPLATE></TEMPLATE>%s"
              "<DEFAULT_USER_QUOTAS>%s</DEFAULT_USER_QUOTAS></USER>",
              quotas, quotas);
    sbuf_release(&hash);
    return sbuf_detach(&doc);
}

void m_user_info(struct req *r)
{
    _cleanup_free_ char *text = NULL;
    const struct user *u;
    bool decrypt;
    int id;

    if (param_int(r, 1, &id) < 0 || param_opt_bool(r, 2, false, &decrypt) < 0)
        return;
    if (id == -1) /* the caller */
        id = r->user->uid;
    u = user_by_id(&r->users, id);
    text = id >= 0 ? doc_read(r->dir, KIND_USER, id) : NULL;
    fail_reset();
    if (!text && !u) {
        reply_no_exists(r, "user", id);
        return;
    }
    /* a user may read itself; other users need oneadmin */
    if (!r->admin && id != r->user->uid) {
        char why[96];

        snprintf(why, sizeof(why), "Not authorized to perform USE USER [%d]", id);
        reply_denied(r, -1, why);
        return;
    }
    if (!text)
        text = user_document(r, u);
    reply_str(r, text);
}

