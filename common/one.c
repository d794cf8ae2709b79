/* one.c - the XML-RPC client for oned on xmlrpc-c's curl transport; see one.h. */
#include "one.h"

#include <pwd.h>
#include <time.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/client.h>

#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "sbuf.h"
#include "version.h"

#define DEFAULT_ENDPOINT "http://localhost:2633/RPC2"
#define SYSTEM_ONE_DIR "/var/lib/one/.one"
#define DEFAULT_TIMEOUT_S 60u
/* An auth or endpoint file is a line or two; anything bigger is not one. */
#define MAX_SMALL_FILE (64u << 10)
/* xmlrpc-c refuses answers above 512 KiB by default, less than a pool listing
 * of a busy cloud; oned itself accepts messages of up to 1 GiB (MESSAGE_SIZE). */
#define MAX_RESPONSE ((size_t)1 << 30)

struct one_client {
    char *endpoint;
    char *session; /* user:secret, the first parameter of every call */
    char *user;
    const char *secret; /* points into session, after the ':' */
    unsigned timeout_s;
    int last_code;
    bool global_ready;
    xmlrpc_client *xc;
    xmlrpc_server_info *server;
};

/* ---- endpoint and session lookup (§7.1) ---- */

/* The home directory of our uid from the passwd database, as oned's C++
 * client does: actions run with oned's environment, whose $HOME may be
 * anything. NULL when there is no entry. */
static char *passwd_home(void)
{
    long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t size = hint > 0 ? (size_t)hint : 4096;
    struct passwd pw, *res = NULL;
    char *home = NULL;

    for (;;) {
        _cleanup_free_ char *buf = xmalloc(size);
        int err = getpwuid_r(getuid(), &pw, buf, size, &res);

        if (err == ERANGE && size < (1u << 20)) {
            size *= 2;
            continue;
        }
        if (!err && res && !str_empty(pw.pw_dir))
            home = xstrdup(pw.pw_dir);
        return home;
    }
}

static bool is_present(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* The first existing <name> in: ~/.one of the passwd home, $HOME/.one, and
 * oned's own home. */
static char *find_one_file(const char *name)
{
    _cleanup_free_ char *pw_home = passwd_home();
    const char *env_home = getenv("HOME");
    _cleanup_free_ char *pw_dir = pw_home ? xasprintf("%s/.one", pw_home) : NULL;
    _cleanup_free_ char *env_dir = !str_empty(env_home) ? xasprintf("%s/.one", env_home) : NULL;
    const char *dirs[] = { pw_dir, env_dir, SYSTEM_ONE_DIR };

    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
        char *path;

        if (!dirs[i])
            continue;
        path = xasprintf("%s/%s", dirs[i], name);
        if (is_present(path))
            return path;
        free(path);
    }
    return NULL;
}

static int read_small_file(const char *path, struct sbuf *out)
{
    if (sbuf_read_file(out, path, MAX_SMALL_FILE) < 0)
        return fail_errno("cannot read %s", path);
    return 0;
}

/* Endpoint files are read whole, like the reference clients do. An empty
 * file counts as absent. */
static char *endpoint_from_file(const char *path, int *err)
{
    struct sbuf sb = SBUF_INIT;

    *err = read_small_file(path, &sb);
    sbuf_rtrim(&sb);
    if (*err || !sb.len) {
        sbuf_release(&sb);
        return NULL;
    }
    return sbuf_detach(&sb);
}

static int resolve_endpoint(struct one_client *c, const char *given)
{
    const char *env = getenv("ONE_XMLRPC");
    _cleanup_free_ char *path = NULL;
    int err = 0;

    if (!str_empty(given)) {
        c->endpoint = xstrdup(given);
    } else if (!str_empty(env)) {
        c->endpoint = xstrdup(env);
    } else {
        path = find_one_file("one_endpoint");
        if (path)
            c->endpoint = endpoint_from_file(path, &err);
        if (err)
            return -1;
        if (!c->endpoint)
            c->endpoint = xstrdup(DEFAULT_ENDPOINT);
    }
    return 0;
}

/* Which file holds the session. Missing explicit files are errors; a
 * $ONE_AUTH naming no file falls through, as in the Ruby client. */
static char *auth_file(const char *given)
{
    const char *env = getenv("ONE_AUTH");
    char *path;

    if (!str_empty(given))
        return xstrdup(given);
    if (!str_empty(env) && is_present(env))
        return xstrdup(env);
    path = find_one_file("one_auth");
    if (!path)
        fail("no OpenNebula credentials: no ONE_AUTH in qcow2c.conf, no $ONE_AUTH file, "
             "no ~/.one/one_auth, no %s/one_auth",
             SYSTEM_ONE_DIR);
    return path;
}

/* The first line, trailing blanks and CR stripped. The content is never
 * quoted in a reason: it is the password. */
static int read_session(struct one_client *c, const char *path)
{
    struct sbuf sb = SBUF_INIT;
    char *colon;

    if (read_small_file(path, &sb) < 0) {
        explicit_bzero(sb.buf, sb.len);
        sbuf_release(&sb);
        return -1;
    }
    sbuf_setlen(&sb, strcspn(sb.buf, "\n"));
    sbuf_rtrim(&sb);
    colon = strchr(sb.buf, ':');
    if (!colon || colon == sb.buf || !colon[1]) {
        explicit_bzero(sb.buf, sb.len);
        sbuf_release(&sb);
        return fail("%s does not hold user:password on its first line", path);
    }
    c->session = sbuf_detach(&sb);
    colon = strchr(c->session, ':');
    c->user = xstrndup(c->session, (size_t)(colon - c->session));
    c->secret = colon + 1;
    return 0;
}

static int resolve_session(struct one_client *c, const char *given)
{
    _cleanup_free_ char *path = auth_file(given);

    if (!path)
        return -1;
    return read_session(c, path);
}

/* ---- the xmlrpc-c client ---- */

static int setup_transport(struct one_client *c)
{
    xmlrpc_env env;
    struct xmlrpc_curl_xportparms xp = { 0 };
    struct xmlrpc_clientparms cp = { 0 };
    unsigned max_s = UINT_MAX / 1000u;
    int rc = 0;

    xmlrpc_env_init(&env);
    xmlrpc_client_setup_global_const(&env);
    c->global_ready = !env.fault_occurred;

    xp.timeout = (c->timeout_s < max_s ? c->timeout_s : max_s) * 1000u; /* ms */
    cp.transport = "curl";
    cp.transportparmsP = &xp;
    cp.transportparm_size = XMLRPC_CXPSIZE(timeout);
    cp.dialect = xmlrpc_dialect_i8;
    /* A private client: the global one would outlive one_close(). */
    if (!env.fault_occurred)
        xmlrpc_client_create(&env, 0, "qcow2c", QCOW2C_VERSION, &cp, XMLRPC_CPSIZE(dialect),
                             &c->xc);
    if (!env.fault_occurred)
        c->server = xmlrpc_server_info_new(&env, c->endpoint);
    if (env.fault_occurred)
        rc = fail("cannot set up the XML-RPC client for %s: %s", c->endpoint,
                  env.fault_string);
    xmlrpc_env_clean(&env);
    return rc;
}

struct one_client *one_open(const struct one_opts *opts)
{
    struct one_client *c = xcalloc(1, sizeof(*c));

    c->timeout_s = opts && opts->timeout_s ? opts->timeout_s : DEFAULT_TIMEOUT_S;
    if (resolve_endpoint(c, opts ? opts->endpoint : NULL) < 0 ||
        resolve_session(c, opts ? opts->auth_file : NULL) < 0 || setup_transport(c) < 0) {
        one_close(c);
        return NULL;
    }
    log_debug("XML-RPC endpoint %s, user %s, timeout %us", c->endpoint, c->user, c->timeout_s);
    return c;
}

struct one_client *one_open_driver(void)
{
    struct one_opts opts = {
        .endpoint = config_str("ONE_XMLRPC"),
        .auth_file = config_str("ONE_AUTH"),
        .timeout_s = config_uint("XMLRPC_TIMEOUT"),
    };

    return one_open(&opts);
}

void one_close(struct one_client *c)
{
    if (!c)
        return;
    if (c->server)
        xmlrpc_server_info_free(c->server);
    if (c->xc)
        xmlrpc_client_destroy(c->xc);
    if (c->global_ready)
        xmlrpc_client_teardown_global_const();
    if (c->session) {
        explicit_bzero(c->session, strlen(c->session));
        free(c->session);
    }
    free(c->user);
    free(c->endpoint);
    free(c);
}

const char *one_endpoint(const struct one_client *c)
{
    return c->endpoint;
}

const char *one_user(const struct one_client *c)
{
    return c->user;
}

int one_last_code(const struct one_client *c)
{
    return c->last_code;
}

/* ---- failures ---- */

/* oned (and xmlrpc-c, in parse errors) may quote what it was sent: text from
 * there passes through here before it can reach the reason or a log line. */
static char *redact(const struct one_client *c, const char *text)
{
    struct sbuf sb = SBUF_INIT;
    size_t n = strlen(c->secret);
    const char *p = text, *hit;

    while (n && (hit = strstr(p, c->secret))) {
        sbuf_add(&sb, p, (size_t)(hit - p));
        sbuf_adds(&sb, "***");
        p = hit + n;
    }
    sbuf_adds(&sb, p);
    return sbuf_detach(&sb);
}

static int refused(struct one_client *c, const char *method, const char *msg, int code)
{
    _cleanup_free_ char *safe = redact(c, msg);

    c->last_code = code;
    return fail("oned refused %s: %s", method, safe);
}

static int faulted(struct one_client *c, const char *method, const char *msg, int code)
{
    _cleanup_free_ char *safe = redact(c, msg);

    c->last_code = -1;
    return fail("oned refused %s: %s (fault %d)", method, safe, code);
}

/* xmlrpc-c wraps curl's message in a long preamble; curl's part is the news.
 * Not redacted: the session travels in the body, which curl never quotes, and
 * a short secret would mangle the message. */
static int unreachable(struct one_client *c, const char *msg)
{
    static const char marker[] = "explaining:";
    const char *p = strstr(msg, marker);

    if (p)
        msg = p + strlen(marker) + strspn(p + strlen(marker), " ");
    c->last_code = -1;
    return fail("cannot reach oned at %s: %s", c->endpoint, msg);
}

static int unexpected(struct one_client *c, const char *method, const char *what)
{
    _cleanup_free_ char *safe = redact(c, what);

    c->last_code = -1;
    return fail("unexpected answer from oned to %s: %s", method, safe);
}

/* ---- values ---- */

static int value_int(const xmlrpc_value *v, int *out)
{
    xmlrpc_env env;
    xmlrpc_int64 i8 = 0;
    int rc = -1;

    xmlrpc_env_init(&env);
    switch (xmlrpc_value_type((xmlrpc_value *)v)) {
    case XMLRPC_TYPE_INT:
        xmlrpc_read_int(&env, v, out);
        rc = env.fault_occurred ? -1 : 0;
        break;
    case XMLRPC_TYPE_I8:
        xmlrpc_read_i8(&env, v, &i8);
        if (!env.fault_occurred && i8 >= INT_MIN && i8 <= INT_MAX) {
            *out = (int)i8;
            rc = 0;
        }
        break;
    default:
        break;
    }
    xmlrpc_env_clean(&env);
    return rc;
}

/* oned sends a <boolean>; a 0/1 <int> is accepted for the same meaning. */
static int value_bool(const xmlrpc_value *v, bool *out)
{
    xmlrpc_env env;
    xmlrpc_bool b = 0;
    int i = 0;
    int rc = 0;

    if (xmlrpc_value_type((xmlrpc_value *)v) != XMLRPC_TYPE_BOOL) {
        if (value_int(v, &i) < 0 || (i != 0 && i != 1))
            return -1;
        *out = i == 1;
        return 0;
    }
    xmlrpc_env_init(&env);
    xmlrpc_read_bool(&env, v, &b);
    if (env.fault_occurred)
        rc = -1;
    else
        *out = b != 0;
    xmlrpc_env_clean(&env);
    return rc;
}

/* A malloc'd copy; NULL unless `v` is a string. */
static char *value_string(const xmlrpc_value *v)
{
    xmlrpc_env env;
    const char *s = NULL;
    char *copy = NULL;

    if (xmlrpc_value_type((xmlrpc_value *)v) != XMLRPC_TYPE_STRING)
        return NULL;
    xmlrpc_env_init(&env);
    xmlrpc_read_string(&env, v, &s);
    if (!env.fault_occurred) {
        copy = xstrdup(s);
        free((void *)s); /* malloc'd by xmlrpc-c */
    }
    xmlrpc_env_clean(&env);
    return copy;
}

/* ---- the response (§7.2), decoded here and nowhere else ---- */

static xmlrpc_value *item(const xmlrpc_value *array, unsigned i)
{
    xmlrpc_env env;
    xmlrpc_value *v = NULL;

    xmlrpc_env_init(&env);
    xmlrpc_array_read_item(&env, array, i, &v);
    if (env.fault_occurred)
        v = NULL;
    xmlrpc_env_clean(&env);
    return v;
}

/* [false, message, code] or [false, message, code, resp_id, <i8> index]. */
static int decode_failure(struct one_client *c, const char *method, const xmlrpc_value *resp,
                          int size)
{
    xmlrpc_value *msg_v = item(resp, 1), *code_v = item(resp, 2);
    _cleanup_free_ char *msg = msg_v ? value_string(msg_v) : NULL;
    int code = 0;
    int rc;

    if (size != 3 && size != 5)
        rc = unexpected(c, method, "a failure array must have 3 or 5 elements");
    else if (!msg)
        rc = unexpected(c, method, "the failure message is not a string");
    else if (!code_v || value_int(code_v, &code) < 0)
        rc = unexpected(c, method, "the error code is not an integer");
    else
        rc = refused(c, method, msg, code);
    if (msg_v)
        xmlrpc_DECREF(msg_v);
    if (code_v)
        xmlrpc_DECREF(code_v);
    return rc;
}

/* On success *value is the second element, owned by the caller. */
static int decode_array(struct one_client *c, const char *method, const xmlrpc_value *resp,
                        xmlrpc_value **value)
{
    xmlrpc_env env;
    xmlrpc_value *ok_v;
    bool ok = false;
    int size;

    xmlrpc_env_init(&env);
    size = xmlrpc_array_size(&env, resp);
    if (env.fault_occurred)
        size = -1;
    xmlrpc_env_clean(&env);
    if (size < 3)
        return unexpected(c, method, "not an array of at least 3 elements");

    ok_v = item(resp, 0);
    if (!ok_v || value_bool(ok_v, &ok) < 0) {
        if (ok_v)
            xmlrpc_DECREF(ok_v);
        return unexpected(c, method, "the first element is not a boolean");
    }
    xmlrpc_DECREF(ok_v);
    if (!ok)
        return decode_failure(c, method, resp, size);
    if (size != 3)
        return unexpected(c, method, "a success array must have 3 elements");
    *value = item(resp, 1);
    c->last_code = 0;
    return *value ? 0 : unexpected(c, method, "no value");
}

static int decode_response(struct one_client *c, const char *method, const char *xml,
                           size_t len, xmlrpc_value **value)
{
    xmlrpc_env env;
    xmlrpc_value *resp = NULL;
    const char *fault_string = NULL;
    int fault_code = 0;
    size_t old_limit = xmlrpc_limit_get(XMLRPC_XML_SIZE_LIMIT_ID);
    int rc;

    xmlrpc_env_init(&env);
    /* The limit is process-wide: restored at once so nothing else sees ours. */
    xmlrpc_limit_set(XMLRPC_XML_SIZE_LIMIT_ID, MAX_RESPONSE);
    xmlrpc_parse_response2(&env, xml, len, &resp, &fault_code, &fault_string);
    xmlrpc_limit_set(XMLRPC_XML_SIZE_LIMIT_ID, old_limit);
    if (env.fault_occurred)
        rc = unexpected(c, method, env.fault_string);
    else if (fault_string)
        rc = faulted(c, method, fault_string, fault_code);
    else
        rc = decode_array(c, method, resp, value);
    if (fault_string)
        free((void *)fault_string);
    if (resp)
        xmlrpc_DECREF(resp);
    xmlrpc_env_clean(&env);
    return rc;
}

/* ---- calls ---- */

enum param_type {
    P_INT,
    P_BOOL,
    P_STR,
};

/* One typed parameter: the types are part of oned's API (§7.3), a <boolean>
 * where an <int> is expected is a fault. */
struct param {
    enum param_type type;
    int i;
    const char *s;
};

#define PINT(v) ((struct param){ .type = P_INT, .i = (v) })
#define PBOOL(v) ((struct param){ .type = P_BOOL, .i = (v) ? 1 : 0 })
#define PSTR(v) ((struct param){ .type = P_STR, .s = (v) })

static xmlrpc_value *new_param(xmlrpc_env *env, const struct param *p)
{
    switch (p->type) {
    case P_INT:
        return xmlrpc_int_new(env, p->i);
    case P_BOOL:
        return xmlrpc_bool_new(env, p->i);
    case P_STR:
        return xmlrpc_string_new(env, p->s ? p->s : "");
    }
    return NULL;
}

static void append(xmlrpc_env *env, xmlrpc_value *array, xmlrpc_value *v)
{
    if (env->fault_occurred)
        return;
    xmlrpc_array_append_item(env, array, v);
    xmlrpc_DECREF(v);
}

/* The methodCall document: the session, then `p`. */
static xmlrpc_mem_block *serialize_call(struct one_client *c, const char *method,
                                        const struct param *p, size_t n)
{
    xmlrpc_env env;
    xmlrpc_value *params;
    xmlrpc_mem_block *xml = NULL;

    xmlrpc_env_init(&env);
    params = xmlrpc_array_new(&env);
    if (!env.fault_occurred)
        append(&env, params, xmlrpc_string_new(&env, c->session));
    for (size_t i = 0; i < n && !env.fault_occurred; i++) {
        xmlrpc_value *v = new_param(&env, &p[i]);

        if (!env.fault_occurred)
            append(&env, params, v);
    }
    if (!env.fault_occurred)
        xml = xmlrpc_mem_block_new(&env, 0);
    if (!env.fault_occurred)
        xmlrpc_serialize_call2(&env, xml, method, params, xmlrpc_dialect_i8);
    if (env.fault_occurred) {
        c->last_code = -1;
        fail("cannot encode the parameters of %s: %s", method, env.fault_string);
        if (xml)
            xmlrpc_mem_block_free(xml);
        xml = NULL;
    }
    if (params)
        xmlrpc_DECREF(params);
    xmlrpc_env_clean(&env);
    return xml;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One round trip. On success *value is oned's value (caller DECREFs). */
static int call(struct one_client *c, const char *method, const struct param *p, size_t n,
                xmlrpc_value **value)
{
    xmlrpc_env env;
    xmlrpc_mem_block *req = serialize_call(c, method, p, n);
    xmlrpc_mem_block *resp;
    double start = now_s();
    int rc;

    *value = NULL;
    if (!req)
        return -1;
    log_debug("XML-RPC %s to %s", method, c->endpoint);
    xmlrpc_env_init(&env);
    xmlrpc_client_transport_call2(&env, c->xc, c->server, req, &resp);
    if (env.fault_occurred) {
        /* resp is left pointing at garbage then, not NULL */
        rc = unreachable(c, env.fault_string);
    } else {
        rc = decode_response(c, method, xmlrpc_mem_block_contents(resp),
                             xmlrpc_mem_block_size(resp), value);
        xmlrpc_mem_block_free(resp);
    }
    log_debug("XML-RPC %s: %s after %.2fs", method, rc ? "failed" : "done", now_s() - start);
    xmlrpc_mem_block_free(req);
    xmlrpc_env_clean(&env);
    return rc;
}

/* For calls that answer an id; `id` may be NULL when nobody needs it. */
static int call_id(struct one_client *c, const char *method, const struct param *p,
                   size_t n, int *id)
{
    xmlrpc_value *v;
    int got = 0;
    int rc;

    if (call(c, method, p, n, &v) < 0)
        return -1;
    rc = value_int(v, &got);
    xmlrpc_DECREF(v);
    if (rc < 0)
        return unexpected(c, method, "the value is not an integer");
    if (id)
        *id = got;
    return 0;
}

/* For calls that answer a document. */
static int call_doc(struct one_client *c, const char *method, const struct param *p,
                    size_t n, char **xml)
{
    xmlrpc_value *v;

    *xml = NULL;
    if (call(c, method, p, n, &v) < 0)
        return -1;
    *xml = value_string(v);
    xmlrpc_DECREF(v);
    return *xml ? 0 : unexpected(c, method, "the value is not a string");
}

/* ---- typed calls, parameters as in §7.3 ---- */

int one_vm_info(struct one_client *c, int id, char **xml)
{
    const struct param p[] = { PINT(id) };

    return call_doc(c, "one.vm.info", p, ARRAY_SIZE(p), xml);
}

int one_vm_update(struct one_client *c, int id, const char *tmpl, int append_mode)
{
    const struct param p[] = { PINT(id), PSTR(tmpl), PINT(append_mode) };

    return call_id(c, "one.vm.update", p, ARRAY_SIZE(p), NULL);
}

int one_vm_disksaveas(struct one_client *c, int vmid, int disk_id, const char *name,
                      const char *type, int snap_id, int *image_id)
{
    const struct param p[] = { PINT(vmid), PINT(disk_id), PSTR(name), PSTR(type),
                               PINT(snap_id) };

    return call_id(c, "one.vm.disksaveas", p, ARRAY_SIZE(p), image_id);
}

int one_vm_allocate(struct one_client *c, const char *tmpl, bool hold, int *id)
{
    const struct param p[] = { PSTR(tmpl), PBOOL(hold) };

    return call_id(c, "one.vm.allocate", p, ARRAY_SIZE(p), id);
}

int one_vmpool_info(struct one_client *c, int filter, int start, int end, int state,
                    char **xml)
{
    const struct param p[] = { PINT(filter), PINT(start), PINT(end), PINT(state) };

    return call_doc(c, "one.vmpool.info", p, ARRAY_SIZE(p), xml);
}

int one_datastore_info(struct one_client *c, int id, char **xml)
{
    const struct param p[] = { PINT(id) };

    return call_doc(c, "one.datastore.info", p, ARRAY_SIZE(p), xml);
}

int one_image_info(struct one_client *c, int id, char **xml)
{
    const struct param p[] = { PINT(id) };

    return call_doc(c, "one.image.info", p, ARRAY_SIZE(p), xml);
}

int one_image_allocate(struct one_client *c, const char *tmpl, int ds_id,
                       bool skip_capacity_check, int *id)
{
    const struct param p[] = { PSTR(tmpl), PINT(ds_id), PBOOL(skip_capacity_check) };

    return call_id(c, "one.image.allocate", p, ARRAY_SIZE(p), id);
}

int one_image_update(struct one_client *c, int id, const char *tmpl, int append_mode)
{
    const struct param p[] = { PINT(id), PSTR(tmpl), PINT(append_mode) };

    return call_id(c, "one.image.update", p, ARRAY_SIZE(p), NULL);
}

int one_image_chown(struct one_client *c, int id, int uid, int gid)
{
    const struct param p[] = { PINT(id), PINT(uid), PINT(gid) };

    return call_id(c, "one.image.chown", p, ARRAY_SIZE(p), NULL);
}

int one_image_delete(struct one_client *c, int id, bool force)
{
    const struct param p[] = { PINT(id), PBOOL(force) };

    return call_id(c, "one.image.delete", p, ARRAY_SIZE(p), NULL);
}

int one_imagepool_info(struct one_client *c, int filter, int start, int end, char **xml)
{
    const struct param p[] = { PINT(filter), PINT(start), PINT(end) };

    return call_doc(c, "one.imagepool.info", p, ARRAY_SIZE(p), xml);
}

int one_user_info_self(struct one_client *c, char **xml)
{
    const struct param p[] = { PINT(-1) };

    return call_doc(c, "one.user.info", p, ARRAY_SIZE(p), xml);
}
