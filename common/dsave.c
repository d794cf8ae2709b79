/* dsave.c - deferred disk save requests; see dsave.h. */
#include "dsave.h"

#include <time.h>

#include "cleanup.h"
#include "log.h"
#include "num.h"
#include "sbuf.h"

/* PoolObjectSQL::INVALID_NAME_CHARS (src/pool/PoolObjectSQL.cc). */
static const char invalid_name_chars[] = "&|:\\\";/'#{}$<>\t\n\v\f\r";

/* VMActions (include/VMActions.h) and LCM states that tell a hard stop. */
enum {
    ACTION_DELETE = 13,
    ACTION_DELETE_RECREATE = 14,
    ACTION_TERMINATE = 27,
    ACTION_TERMINATE_HARD = 28,
    LCM_CLEANUP_DELETE = 23,
};

static const char *const state_names[] = {
    [DSAVE_NONE] = "NONE",   [DSAVE_PENDING] = "PENDING", [DSAVE_SAVING] = "SAVING",
    [DSAVE_SAVED] = "SAVED", [DSAVE_SKIPPED] = "SKIPPED",
};

static const char *const shutdown_names[] = {
    [DSAVE_SHUTDOWN_UNKNOWN] = "unknown",
    [DSAVE_GRACEFUL] = "graceful",
    [DSAVE_HARD] = "hard",
};

void dsave_init(struct dsave_req *r, int disk_id)
{
    memset(r, 0, sizeof(*r));
    r->disk_id = disk_id;
    r->ds_id = -1;
    r->image_id = -1;
}

void dsave_release(struct dsave_req *r)
{
    free(r->name);
    free(r->type);
    free(r->requested_by);
    free(r->reason);
    dsave_init(r, r->disk_id);
}

char *dsave_attr_name(int disk_id)
{
    return xasprintf(DSAVE_ATTR_PREFIX "%d", disk_id);
}

const char *dsave_state_str(enum dsave_state s)
{
    return (size_t)s < ARRAY_SIZE(state_names) ? state_names[s] : "?";
}

const char *dsave_shutdown_str(enum dsave_shutdown s)
{
    return (size_t)s < ARRAY_SIZE(shutdown_names) ? shutdown_names[s] : "?";
}

int dsave_state_parse(const char *s, enum dsave_state *out)
{
    for (size_t i = 1; i < ARRAY_SIZE(state_names); i++)
        if (s && streq(s, state_names[i])) {
            *out = (enum dsave_state)i;
            return 0;
        }
    return -1;
}

int dsave_shutdown_parse(const char *s, enum dsave_shutdown *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(shutdown_names); i++)
        if (s && streq(s, shutdown_names[i])) {
            *out = (enum dsave_shutdown)i;
            return 0;
        }
    return -1;
}

bool dsave_type_valid(const char *type)
{
    return type && (streq(type, "OS") || streq(type, "DATABLOCK") || streq(type, "CDROM"));
}

const char *dsave_type_name(long long type)
{
    switch (type) {
    case 0:
        return "OS";
    case 1:
        return "CDROM";
    case 2:
        return "DATABLOCK";
    default:
        return NULL;
    }
}

int dsave_name_check(const char *name)
{
    size_t bad;

    if (str_empty(name))
        return fail("invalid image name: it cannot be empty");
    bad = strcspn(name, invalid_name_chars);
    if (name[bad])
        return fail("invalid image name '%s': the character '%c' is not allowed", name,
                    name[bad] == '\t' || name[bad] == '\n' ? ' ' : name[bad]);
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return fail("invalid image name: control characters are not allowed");
    if (strlen(name) > 128)
        return fail("invalid image name: at most 128 characters");
    return 0;
}

bool dsave_is_pending(const struct dsave_req *r)
{
    return r->state == DSAVE_PENDING || r->state == DSAVE_SAVING;
}

/* ---- reading ---- */

static char *field(const struct xml *vm, int disk_id, const char *key)
{
    _cleanup_free_ char *attr = dsave_attr_name(disk_id);

    /* attr and key are ours (a number and constants), never user data */
    return xml_get(vm, "/VM/USER_TEMPLATE/%s/%s", attr, key);
}

static int num_field(const struct xml *vm, int disk_id, const char *key, bool required,
                     long long *out)
{
    _cleanup_free_ char *v = field(vm, disk_id, key);
    int64_t n;

    if (str_empty(v)) {
        if (required)
            return fail("%s has no %s", DSAVE_ATTR_PREFIX, key);
        return 0;
    }
    if (parse_i64(v, -1, INT64_MAX, &n) < 0)
        return fail("%s of the request is not a number: '%s'", key, v);
    *out = n;
    return 0;
}

static int read_fields(const struct xml *vm, struct dsave_req *r)
{
    _cleanup_free_ char *state = field(vm, r->disk_id, "STATE");
    _cleanup_free_ char *pers = field(vm, r->disk_id, "PERSISTENT");
    _cleanup_free_ char *shut = field(vm, r->disk_id, "SHUTDOWN");
    long long ds = -1, img = -1;

    r->name = field(vm, r->disk_id, "NAME");
    r->type = field(vm, r->disk_id, "TYPE");
    r->requested_by = field(vm, r->disk_id, "REQUESTED_BY");
    r->reason = field(vm, r->disk_id, "REASON");
    if (dsave_state_parse(state, &r->state) < 0)
        return fail("unknown STATE '%s'", state ? state : "");
    if (dsave_name_check(r->name) < 0)
        return -1;
    if (!str_empty(r->type) && !dsave_type_valid(r->type))
        return fail("unknown TYPE '%s'", r->type);
    if (!str_empty(pers) && !is_yes(pers) && !is_no(pers))
        return fail("PERSISTENT is '%s', not YES or NO", pers);
    r->persistent = is_yes(pers);
    if (num_field(vm, r->disk_id, "DATASTORE_ID", true, &ds) < 0 ||
        num_field(vm, r->disk_id, "REQUESTED", true, &r->requested) < 0 ||
        num_field(vm, r->disk_id, "IMAGE_ID", false, &img) < 0 ||
        num_field(vm, r->disk_id, "SAVED", false, &r->saved) < 0)
        return -1;
    if (ds < 0 || ds > INT_MAX || img > INT_MAX)
        return fail("DATASTORE_ID or IMAGE_ID out of range");
    r->ds_id = (int)ds;
    r->image_id = (int)img;
    if (!str_empty(shut) && dsave_shutdown_parse(shut, &r->shutdown) < 0)
        return fail("unknown SHUTDOWN '%s'", shut);
    if (r->state == DSAVE_SAVED && r->image_id < 0)
        return fail("STATE is SAVED without an IMAGE_ID");
    return 0;
}

int dsave_read(const struct xml *vm, int disk_id, struct dsave_req *r)
{
    _cleanup_free_ char *attr = dsave_attr_name(disk_id);

    dsave_init(r, disk_id);
    if (xml_count(vm, "/VM/USER_TEMPLATE/%s", attr) <= 0)
        return 0;
    if (read_fields(vm, r) < 0) {
        dsave_release(r);
        return fail_context("the deferred save request %s of the VM is malformed", attr);
    }
    return 0;
}

/* ---- writing ---- */

char *dsave_template(const struct dsave_req *r)
{
    _cleanup_free_ char *attr = dsave_attr_name(r->disk_id);
    struct xml_tmpl t;

    xml_tmpl_begin(&t, "TEMPLATE");
    xml_tmpl_open(&t, attr);
    xml_tmpl_add(&t, "NAME", r->name);
    if (!str_empty(r->type))
        xml_tmpl_add(&t, "TYPE", r->type);
    xml_tmpl_add(&t, "PERSISTENT", r->persistent ? "YES" : "NO");
    xml_tmpl_addf(&t, "DATASTORE_ID", "%d", r->ds_id);
    xml_tmpl_addf(&t, "REQUESTED", "%lld", r->requested);
    if (!str_empty(r->requested_by))
        xml_tmpl_add(&t, "REQUESTED_BY", r->requested_by);
    xml_tmpl_add(&t, "STATE", dsave_state_str(r->state));
    if (r->shutdown != DSAVE_SHUTDOWN_UNKNOWN)
        xml_tmpl_add(&t, "SHUTDOWN", dsave_shutdown_str(r->shutdown));
    if (r->image_id >= 0)
        xml_tmpl_addf(&t, "IMAGE_ID", "%d", r->image_id);
    if (r->saved > 0)
        xml_tmpl_addf(&t, "SAVED", "%lld", r->saved);
    if (!str_empty(r->reason))
        xml_tmpl_add(&t, "REASON", r->reason);
    xml_tmpl_close(&t, attr);
    return xml_tmpl_end(&t);
}

char *dsave_cancel_template(int disk_id)
{
    /* template syntax: XML has no way to write an empty vector */
    return xasprintf(DSAVE_ATTR_PREFIX "%d = [ ]\n", disk_id);
}

char *dsave_file_name(int vmid, int disk_id, long long requested)
{
    return xasprintf("qcow2c-saved-%d-%d-%lld", vmid, disk_id, requested);
}

enum dsave_shutdown dsave_shutdown_of(const struct xml *vm)
{
    long long lcm = -1, action = -1;
    int n = xml_count(vm, "/VM/HISTORY_RECORDS/HISTORY");

    if (xml_get_int(vm, &lcm, "/VM/LCM_STATE") < 0)
        fail_reset();
    if (n > 0 && xml_get_int(vm, &action, "/VM/HISTORY_RECORDS/HISTORY[%d]/ACTION", n) < 0)
        fail_reset();
    if (lcm == LCM_CLEANUP_DELETE || action == ACTION_TERMINATE_HARD || action == ACTION_DELETE ||
        action == ACTION_DELETE_RECREATE)
        return DSAVE_HARD;
    if (action == ACTION_TERMINATE)
        return DSAVE_GRACEFUL;
    return DSAVE_SHUTDOWN_UNKNOWN;
}

long long dsave_now(void)
{
    return (long long)time(NULL);
}
