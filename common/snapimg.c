/*
 * snapimg.c - the images a disk save made, as onesnap lists them
 * (snapimg.h).
 */
#include "snapimg.h"

#include <time.h>

#include "cleanup.h"
#include "log.h"
#include "num.h"

static const char *const how_names[] = {
    [SNAP_NONE] = "-",
    [SNAP_SAVEAS] = "saveas",
    [SNAP_HOT] = "hot",
    [SNAP_DEFERRED] = "deferred",
};

/* include/Image.h, ImageState */
static const char *const state_names[] = {
    "INIT",  "READY",  "USED",      "DISABLED",    "LOCKED",           "ERROR",
    "CLONE", "DELETE", "USED_PERS", "LOCKED_USED", "LOCKED_USED_PERS",
};

void snapimg_release(struct snapimg *s)
{
    free(s->name);
    free(s->uname);
    free(s->gname);
    free(s->ds_name);
    free(s->when);
    free(s->consistency);
    free(s->shutdown);
    memset(s, 0, sizeof(*s));
}

const char *snapimg_how_str(enum snap_how how)
{
    return (size_t)how < ARRAY_SIZE(how_names) ? how_names[how] : "?";
}

int snapimg_how_parse(const char *s, enum snap_how *out)
{
    for (size_t i = SNAP_SAVEAS; i < ARRAY_SIZE(how_names); i++) {
        if (streq(s, how_names[i])) {
            *out = (enum snap_how)i;
            return 0;
        }
    }
    return -1;
}

const char *snapimg_state_str(long long state)
{
    return state >= 0 && (size_t)state < ARRAY_SIZE(state_names) ? state_names[state] : "?";
}

char *snapimg_utc(long long epoch)
{
    time_t t = (time_t)epoch;
    struct tm tmv;
    char buf[32];

    if (!gmtime_r(&t, &tmv) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tmv))
        return xasprintf("%lld", epoch);
    return xstrdup(buf);
}

/* An id attribute of the template: -1 when absent, -2 when not an id. */
static int tmpl_id(const struct xml *x, const char *base, const char *name)
{
    _cleanup_free_ char *v = xml_get(x, "%s/TEMPLATE/%s", base, name);
    int id;

    if (!v)
        return -1;
    return parse_id(v, &id) == 0 ? id : -2;
}

static char *tmpl_str(const struct xml *x, const char *base, const char *name)
{
    return xml_get_def(x, "", "%s/TEMPLATE/%s", base, name);
}

/* Where the disk came from and how; 0 when no save made the image. */
static int read_origin(const struct xml *x, const char *base, struct snapimg *s)
{
    int vm = tmpl_id(x, base, "QCOW2C_SAVED_VM_ID"), disk;

    if (vm != -1) {
        _cleanup_free_ char *at = tmpl_str(x, base, "QCOW2C_SAVED_AT");
        int64_t epoch;

        s->how = SNAP_DEFERRED;
        disk = tmpl_id(x, base, "QCOW2C_SAVED_DISK_ID");
        s->when = parse_i64(at, 0, INT64_MAX, &epoch) == 0 ? snapimg_utc(epoch) : xstrdup("");
        s->consistency = tmpl_str(x, base, "QCOW2C_CONSISTENCY");
        s->shutdown = tmpl_str(x, base, "QCOW2C_SHUTDOWN");
    } else {
        vm = tmpl_id(x, base, "SAVED_VM_ID");
        if (vm == -1)
            return 0;
        disk = tmpl_id(x, base, "SAVED_DISK_ID");
        s->when = tmpl_str(x, base, "HOT_SAVE_INSTANT");
        s->how = *s->when ? SNAP_HOT : SNAP_SAVEAS;
        if (!*s->when) {
            free(s->when);
            s->when = snapimg_utc(s->regtime);
        }
        s->consistency = tmpl_str(x, base, "HOT_SAVE_CONSISTENCY");
        s->shutdown = xstrdup("");
    }
    if (vm < 0 || disk < 0)
        return fail("image %d: the VM or disk it was saved from is not an id", s->id);
    s->vm_id = vm;
    s->disk_id = disk;
    return 1;
}

int snapimg_read(const struct xml *x, const char *base, struct snapimg *s)
{
    long long id = -1, persistent = 0;
    int rc;

    memset(s, 0, sizeof(*s));
    if (xml_get_int(x, &id, "%s/ID", base) < 0 || id < 0 || id > INT_MAX ||
        xml_get_int(x, &s->uid, "%s/UID", base) < 0 ||
        xml_get_int(x, &s->gid, "%s/GID", base) < 0 ||
        xml_get_int(x, &s->state, "%s/STATE", base) < 0 ||
        xml_get_int(x, &s->type, "%s/TYPE", base) < 0 ||
        xml_get_int(x, &s->ds_id, "%s/DATASTORE_ID", base) < 0)
        return fail_context("an image in oned's answer");
    s->id = (int)id;
    /* informative only: absent or odd is shown as 0 */
    if (xml_get_int(x, &s->size_mb, "%s/SIZE", base) < 0 ||
        xml_get_int(x, &s->regtime, "%s/REGTIME", base) < 0 ||
        xml_get_int(x, &s->running_vms, "%s/RUNNING_VMS", base) < 0 ||
        xml_get_int(x, &persistent, "%s/PERSISTENT", base) < 0)
        fail_reset();
    s->persistent = persistent == 1;
    rc = read_origin(x, base, s);
    if (rc <= 0) {
        snapimg_release(s);
        return rc;
    }
    s->name = xml_get_def(x, "", "%s/NAME", base);
    s->uname = xml_get_def(x, "", "%s/UNAME", base);
    s->gname = xml_get_def(x, "", "%s/GNAME", base);
    s->ds_name = xml_get_def(x, "", "%s/DATASTORE", base);
    return 1;
}

bool snapimg_matches(const struct snapimg *s, const struct snap_filter *f)
{
    if (f->vm_id >= 0 && s->vm_id != f->vm_id)
        return false;
    if (f->how != SNAP_NONE && s->how != f->how)
        return false;
    return !f->name || strstr(s->name, f->name);
}

size_t snap_pages(size_t total, size_t per)
{
    if (per == 0 || total == 0)
        return 1;
    return (total - 1) / per + 1;
}

int snap_page(size_t total, size_t page, size_t per, size_t *first, size_t *n)
{
    *first = 0;
    *n = 0;
    if (page == 0 || per == 0 || page > snap_pages(total, per))
        return -1;
    *first = (page - 1) * per;
    *n = total - *first < per ? total - *first : per;
    return 0;
}
