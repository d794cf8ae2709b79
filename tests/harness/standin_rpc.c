/*
 * standin_rpc.c - parameters, answers and authorization of one request
 * (see standin_rpc.h).
 */

#include "standin_rpc.h"

#include "cleanup.h"
#include "log.h"
#include "num.h"
#include "strvec.h"

/* ---- parameters ---- */

/* xmlrpc-c's paramList::get* (src/cpp/param_list.cpp): the texts oned's
 * clients see in the fault. */
static const char *const type_fault[] = {
    [XMLRPC_TYPE_INT] = "Parameter that is supposed to be integer is not",
    [XMLRPC_TYPE_BOOL] = "Parameter that is supposed to be boolean is not",
    [XMLRPC_TYPE_STRING] = "Parameter that is supposed to be a string is not",
};

/* Parameter i (a new reference) when it exists and has type t. */
static xmlrpc_value *typed(struct req *r, int i, xmlrpc_type t)
{
    xmlrpc_value *v = NULL;

    if (i >= r->nparams) {
        reply_fault(r, XMLRPC_TYPE_ERROR, "Not enough parameters");
        return NULL;
    }
    xmlrpc_array_read_item(&r->env, r->params, (unsigned)i, &v);
    if (r->env.fault_occurred)
        return NULL;
    if (xmlrpc_value_type(v) != t) {
        xmlrpc_DECREF(v);
        reply_fault(r, XMLRPC_TYPE_ERROR, "%s", type_fault[t]);
        return NULL;
    }
    return v;
}

int param_int(struct req *r, int i, int *out)
{
    xmlrpc_value *v = typed(r, i, XMLRPC_TYPE_INT);

    if (!v)
        return -1;
    xmlrpc_read_int(&r->env, v, out);
    xmlrpc_DECREF(v);
    return r->env.fault_occurred ? -1 : 0;
}

int param_bool(struct req *r, int i, bool *out)
{
    xmlrpc_value *v = typed(r, i, XMLRPC_TYPE_BOOL);
    xmlrpc_bool b = 0;

    if (!v)
        return -1;
    xmlrpc_read_bool(&r->env, v, &b);
    xmlrpc_DECREF(v);
    *out = b != 0;
    return r->env.fault_occurred ? -1 : 0;
}

int param_str(struct req *r, int i, char **out)
{
    xmlrpc_value *v = typed(r, i, XMLRPC_TYPE_STRING);
    const char *s = NULL;

    if (!v)
        return -1;
    xmlrpc_read_string(&r->env, v, &s);
    xmlrpc_DECREF(v);
    if (r->env.fault_occurred)
        return -1;
    *out = xstrdup(s);
    free((void *)s); /* malloc'd by xmlrpc-c */
    return 0;
}

int param_opt_int(struct req *r, int i, int def, int *out)
{
    *out = def;
    return i < r->nparams ? param_int(r, i, out) : 0;
}

int param_opt_bool(struct req *r, int i, bool def, bool *out)
{
    *out = def;
    return i < r->nparams ? param_bool(r, i, out) : 0;
}

/* A string on one line: quoted, with \" \\ \n \r \t escapes. */
static void render_string(struct sbuf *out, const char *s)
{
    sbuf_addch(out, '"');
    for (; *s; s++) {
        switch (*s) {
        case '"':
            sbuf_adds(out, "\\\"");
            break;
        case '\\':
            sbuf_adds(out, "\\\\");
            break;
        case '\n':
            sbuf_adds(out, "\\n");
            break;
        case '\r':
            sbuf_adds(out, "\\r");
            break;
        case '\t':
            sbuf_adds(out, "\\t");
            break;
        default:
            sbuf_addch(out, *s);
        }
    }
    sbuf_addch(out, '"');
}

static void render_value(struct sbuf *out, xmlrpc_env *env, xmlrpc_value *v)
{
    const char *s = NULL;
    xmlrpc_int64 i8 = 0;
    xmlrpc_bool b = 0;
    int i = 0;

    switch (xmlrpc_value_type(v)) {
    case XMLRPC_TYPE_INT:
        xmlrpc_read_int(env, v, &i);
        sbuf_addf(out, "%d", i);
        break;
    case XMLRPC_TYPE_I8:
        xmlrpc_read_i8(env, v, &i8);
        sbuf_addf(out, "%lld", (long long)i8);
        break;
    case XMLRPC_TYPE_BOOL:
        xmlrpc_read_bool(env, v, &b);
        sbuf_adds(out, b ? "true" : "false");
        break;
    case XMLRPC_TYPE_STRING:
        xmlrpc_read_string(env, v, &s);
        render_string(out, s ? s : "");
        free((void *)s);
        break;
    default:
        sbuf_adds(out, "<other>");
        break;
    }
}

void params_render(struct req *r, struct sbuf *out)
{
    for (int i = 1; i < r->nparams; i++) {
        xmlrpc_env env;
        xmlrpc_value *v = NULL;

        xmlrpc_env_init(&env);
        xmlrpc_array_read_item(&env, r->params, (unsigned)i, &v);
        if (i > 1)
            sbuf_addch(out, ' ');
        if (!env.fault_occurred) {
            render_value(out, &env, v);
            xmlrpc_DECREF(v);
        }
        xmlrpc_env_clean(&env);
    }
}

/* ---- answers ---- */

static void set_answer(struct req *r, xmlrpc_value *v)
{
    if (r->answer)
        xmlrpc_DECREF(r->answer);
    r->answer = v;
}

void reply_int(struct req *r, int value)
{
    set_answer(r, xmlrpc_build_value(&r->env, "(bii)", (xmlrpc_bool)1, value, 0));
    sbuf_reset(&r->outcome);
    sbuf_addf(&r->outcome, "ok %d", value);
}

void reply_str(struct req *r, const char *value)
{
    set_answer(r, xmlrpc_build_value(&r->env, "(bsi)", (xmlrpc_bool)1, value, 0));
    sbuf_reset(&r->outcome);
    sbuf_adds(&r->outcome, "ok document");
}

void reply_error_text(struct req *r, int code, int resp_id, const char *msg)
{
    /* replication_idx is UINT64_MAX, which xmlrpc-c sends as <i8>-1 */
    set_answer(r, xmlrpc_build_value(&r->env, "(bsiiI)", (xmlrpc_bool)0, msg, code, resp_id,
                                     (xmlrpc_int64)-1));
    sbuf_reset(&r->outcome);
    sbuf_addf(&r->outcome, "error %d ", code);
    sbuf_add_oneline(&r->outcome, msg, strlen(msg));
}

static void reply_verror(struct req *r, int code, int resp_id, const char *fmt, va_list ap)
{
    struct sbuf msg = SBUF_INIT;

    sbuf_addf(&msg, "[%s] ", r->method);
    sbuf_vaddf(&msg, fmt, ap);
    reply_error_text(r, code, resp_id, msg.buf);
    sbuf_release(&msg);
}

void reply_error(struct req *r, int code, int resp_id, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    reply_verror(r, code, resp_id, fmt, ap);
    va_end(ap);
}

void reply_no_exists(struct req *r, const char *object, int id)
{
    reply_error(r, E_NO_EXISTS, id, "Error getting %s [%d].", object, id);
}

void reply_denied(struct req *r, int resp_id, const char *why)
{
    reply_error(r, E_AUTHORIZATION, resp_id, "User [%d] : %s.", r->user->uid, why);
}

void reply_fault(struct req *r, int code, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = xvasprintf(fmt, ap);
    va_end(ap);
    xmlrpc_env_set_fault(&r->env, code, msg);
    sbuf_reset(&r->outcome);
    sbuf_addf(&r->outcome, "fault %d %s", code, msg);
    free(msg);
}

/* ---- authorization ---- */

static const char *const op_names[] = { "USE", "MANAGE", "ADMIN" };
static const char op_letters[] = { 'U', 'M', 'A' };

static bool perm_bit(const struct xml *doc, const char *root, const char *who, enum op op)
{
    _cleanup_free_ char *path = xasprintf("/%s/PERMISSIONS/%s_%c", root, who, op_letters[op]);
    _cleanup_free_ char *v = xml_get(doc, "%s", path);

    return streq(v, "1");
}

bool may(const struct req *r, const struct xml *doc, const char *root, enum op op)
{
    long long uid = -1, gid = -1;

    if (r->admin)
        return true;
    /* oned's default ACL rule "@1 DATASTORE+NET/%0 USE": the users group may
     * use the datastores (of cluster 0, where a stand-in keeps them all) */
    if (streq(root, "DATASTORE") && op == OP_USE && r->user->gid == 1)
        return true;
    if (xml_get_int(doc, &uid, "/%s/UID", root) < 0 ||
        xml_get_int(doc, &gid, "/%s/GID", root) < 0) {
        fail_reset();
        return false;
    }
    if (uid == r->user->uid && perm_bit(doc, root, "OWNER", op))
        return true;
    if (gid == r->user->gid && perm_bit(doc, root, "GROUP", op))
        return true;
    return perm_bit(doc, root, "OTHER", op);
}

bool authorize(struct req *r, const struct xml *doc, const char *root, enum op op, int id,
               int resp_id)
{
    _cleanup_free_ char *why = NULL;

    if (may(r, doc, root, op))
        return true;
    why = xasprintf("Not authorized to perform %s %s [%d]", op_names[op], root, id);
    reply_denied(r, resp_id, why);
    return false;
}

/* ---- pools ---- */

long long doc_ll(const struct xml *doc, const char *path, long long def)
{
    long long v;

    if (xml_get_int(doc, &v, "%s", path) < 0) {
        fail_reset();
        return def;
    }
    return v;
}

bool pool_shows(const struct req *r, const struct xml *doc, const char *root, int filter)
{
    _cleanup_free_ char *uid_path = xasprintf("/%s/UID", root);
    _cleanup_free_ char *gid_path = xasprintf("/%s/GID", root);
    long long uid = doc_ll(doc, uid_path, -1), gid = doc_ll(doc, gid_path, -1);
    bool mine = uid == r->user->uid, my_group = gid == r->user->gid;
    /* "all": the caller's ACLs cover every object (oneadmin group) */
    bool seen = r->admin || mine || perm_bit(doc, root, "OTHER", OP_USE) ||
                (my_group && perm_bit(doc, root, "GROUP", OP_USE));

    switch (filter) {
    case -3:
        return mine;
    case -4:
        return my_group && seen;
    case -1:
        return mine || (my_group && seen);
    case -2:
        return seen;
    default:
        return uid == filter && seen;
    }
}

void pool_select(struct req *r, enum kind k, int start, int end,
                 bool (*keep)(struct req *r, const struct xml *doc, void *ctx), void *ctx,
                 struct sbuf *out,
                 void (*emit)(struct sbuf *out, const char *text, const struct xml *doc))
{
    _cleanup_free_ int *ids = NULL;
    long long skip = end < -1 ? start : 0, limit = end < -1 ? -(long long)end : -1;
    size_t n;

    doc_ids(r->dir, k, &ids, &n);
    for (size_t i = n; i-- > 0 && limit != 0;) {
        _cleanup_free_ char *text = NULL;
        struct xml *doc;

        /* oid_filter: a range only when end >= -1 and start != -1 */
        if (end >= -1 && start != -1 && (ids[i] < start || (end != -1 && ids[i] > end)))
            continue;
        text = doc_read(r->dir, k, ids[i]);
        doc = text ? xml_doc_parse(text, strlen(text), kind_root(k)) : NULL;
        if (!doc) {
            fail_reset(); /* a document a test is rewriting: not listed */
            continue;
        }
        if (keep(r, doc, ctx) && skip-- <= 0) {
            emit(out, text, doc);
            if (limit > 0)
                limit--;
        }
        xml_free(doc);
    }
}

/* ---- objects ---- */

const char *object_name(enum kind k)
{
    static const char *const names[] = { "virtual machine", "image", "datastore", "user" };

    return names[k];
}

struct xml *object_load(struct req *r, enum kind k, int id, char **text)
{
    struct xml *doc;

    *text = id >= 0 ? doc_read(r->dir, k, id) : NULL;
    doc = *text ? xml_doc_parse(*text, strlen(*text), kind_root(k)) : NULL;
    if (!doc) {
        if (*text)
            reply_error(r, E_INTERNAL, id, "stand-in: %s/%d.xml: %s", kind_dir(k), id,
                        fail_reason());
        else
            reply_no_exists(r, object_name(k), id);
        fail_reset();
        free(*text);
        *text = NULL;
    }
    return doc;
}

int object_store(struct req *r, enum kind k, int id, const char *text)
{
    if (doc_write(r->dir, k, id, text) == 0)
        return 0;
    reply_error(r, E_INTERNAL, id, "stand-in cannot store %s %d: %s", kind_dir(k), id,
                fail_reason());
    fail_reset();
    return -1;
}

int datastore_images(struct req *r, int ds_id, int image_id, bool add)
{
    _cleanup_free_ char *text = NULL;
    struct xml *doc = object_load(r, KIND_DATASTORE, ds_id, &text);
    struct strvec ids = STRVEC_INIT;
    struct sbuf el = SBUF_INIT;
    char *out;
    int id, rc;

    if (!doc)
        return -1;
    xml_get_all(doc, &ids, "/DATASTORE/IMAGES/ID");
    xml_free(doc);
    sbuf_adds(&el, "<IMAGES>");
    for (size_t i = 0; i < ids.nr; i++)
        if (parse_id(ids.v[i], &id) == 0 && id != image_id)
            sbuf_addf(&el, "<ID>%d</ID>", id);
    if (add)
        sbuf_addf(&el, "<ID>%d</ID>", image_id);
    sbuf_adds(&el, "</IMAGES>");
    out = doc_replace_child(text, "IMAGES", el.buf);
    rc = out ? object_store(r, KIND_DATASTORE, ds_id, out) : -1;
    if (!out) {
        reply_error(r, E_INTERNAL, ds_id, "stand-in: datastore %d: %s", ds_id, fail_reason());
        fail_reset();
    }
    free(out);
    sbuf_release(&el);
    strvec_clear(&ids);
    return rc;
}

void default_permissions(struct sbuf *out)
{
    sbuf_adds(out, "<PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A>"
                   "<GROUP_U>0</GROUP_U><GROUP_M>0</GROUP_M><GROUP_A>0</GROUP_A>"
                   "<OTHER_U>0</OTHER_U><OTHER_M>0</OTHER_M><OTHER_A>0</OTHER_A>"
                   "</PERMISSIONS>");
}

const char *name_invalid(const char *name, char *buf, size_t len)
{
    /* PoolObjectSQL::INVALID_NAME_CHARS */
    static const char invalid[] = "&|:\\\";/'#{}$<>\t\n\v\f\r";
    size_t at;

    if (str_empty(name))
        return "Invalid NAME, it cannot be empty";
    at = strcspn(name, invalid);
    if (!name[at])
        return NULL;
    snprintf(buf, len, "Invalid NAME, char '%c' is not allowed", name[at]);
    return buf;
}

