/* dsutil.c - shared steps of the DS actions; see dsutil.h. */
#include "dsutil.h"

#include <dirent.h>
#include <time.h>

#include "cleanup.h"
#include "config.h"
#include "fsutil.h"
#include "hostpath.h"
#include "image.h"
#include "log.h"
#include "num.h"
#include "qemu_img.h"
#include "stream.h"

char *ds_tmpl(const struct xml *msg, const char *name)
{
    return xml_get(msg, "/DS_DRIVER_ACTION_DATA/DATASTORE/TEMPLATE/%s", name);
}

char *img_attr(const struct xml *msg, const char *name)
{
    return xml_get(msg, "/DS_DRIVER_ACTION_DATA/IMAGE/%s", name);
}

int ds_load(const struct xml *msg, struct ds *ds)
{
    _cleanup_free_ char *bridge = ds_tmpl(msg, "BRIDGE_LIST");
    _cleanup_free_ char *sparse = ds_tmpl(msg, "SPARSE");
    _cleanup_free_ char *type = xml_get(msg, "/DS_DRIVER_ACTION_DATA/DATASTORE/TYPE");
    long long v;

    memset(ds, 0, sizeof(*ds));
    if (xml_get_int(msg, &v, "/DS_DRIVER_ACTION_DATA/DATASTORE/ID") < 0)
        return fail_context("the driver message has no datastore");
    ds->id = (int)v;
    if (!type || parse_id(type, &ds->type) < 0)
        ds->type = 0;
    ds->base_path = xml_get(msg, "/DS_DRIVER_ACTION_DATA/DATASTORE/BASE_PATH");
    if (str_empty(ds->base_path)) {
        int id = ds->id;

        ds_release(ds);
        return fail("datastore %d has no BASE_PATH", id);
    }
    ds->base_norm = path_normalize(ds->base_path);
    if (!path_is_clean(ds->base_norm)) {
        int id = ds->id;

        ds_release(ds);
        return fail("datastore %d has an unusable BASE_PATH", id);
    }
    if (!str_empty(bridge)) {
        int id = ds->id;

        ds_release(ds);
        return fail("datastore %d has a BRIDGE_LIST: qcow2c needs the datastore mounted on "
                    "the front-end and does not use bridge hosts",
                    id);
    }
    ds->driver = ds_tmpl(msg, "DRIVER");
    if (!ds->driver)
        ds->driver = xstrdup("");
    ds->sparse = !is_no(sparse);
    return 0;
}

void ds_release(struct ds *ds)
{
    free(ds->base_path);
    free(ds->base_norm);
    free(ds->driver);
    memset(ds, 0, sizeof(*ds));
}

char *ds_new_source(const struct ds *ds, int image_id)
{
    _cleanup_free_ char *seed = xasprintf("%lld:%d\n", (long long)time(NULL), image_id);
    _cleanup_free_ char *hash = digest_hex(DIGEST_MD5, seed, strlen(seed));

    return xasprintf("%s/%s", ds->base_path, hash);
}

int ds_check_source(const struct ds *ds, const char *source, char **norm)
{
    _cleanup_free_ char *n = NULL;
    _cleanup_free_ char *dir = NULL;

    *norm = NULL;
    if (str_empty(source))
        return fail("the image has no SOURCE");
    n = path_normalize(source);
    dir = path_dirname(n);
    if (!path_is_clean(n) || !streq(dir, ds->base_norm) || streq(path_basename(n), ""))
        return fail("refusing '%s': it is not a file of datastore %d (%s)", source, ds->id,
                    ds->base_path);
    *norm = TAKE_PTR(n);
    return 0;
}

/* "/a/b" is under "/a/" and "/a" but not under "/ab". */
static bool prefix_dir(const char *path, const char *d)
{
    size_t n = strlen(d);

    if (streq(d, "/"))
        return true;
    return !strncmp(path, d, n) && (path[n] == '/' || path[n] == '\0');
}

/* `path` is resolved: `dir` is compared as written and resolved too, so
 * that a directory named through a symlink (a HOME that is a link) covers
 * what is under its target. */
static bool under(const char *path, const char *dir)
{
    _cleanup_free_ char *d = path_normalize(dir);
    _cleanup_free_ char *r = realpath(dir, NULL);

    return prefix_dir(path, d) || (r && prefix_dir(path, r));
}

int ds_check_restricted(const struct xml *msg, const char *path)
{
    _cleanup_free_ char *restricted = ds_tmpl(msg, "RESTRICTED_DIRS");
    _cleanup_free_ char *safe = ds_tmpl(msg, "SAFE_DIRS");
    _cleanup_free_ char *real = realpath(path, NULL);
    struct strvec dirs = STRVEC_INIT, safes = STRVEC_INIT;
    const char *loc = getenv("ONE_LOCATION");
    const char *home = getenv("HOME");
    int rc = 0;

    if (!real)
        return fail_errno("cannot access '%s'", path);
    if (loc && *loc) {
        strvec_pushf(&dirs, "%s/var/", loc);
        strvec_pushf(&dirs, "%s/etc/", loc);
    } else {
        strvec_pushl(&dirs, "/var/lib/one/", "/etc/one/", NULL);
    }
    if (home && *home)
        strvec_push(&dirs, home);
    if (restricted)
        strvec_split(&dirs, restricted);
    if (safe)
        strvec_split(&safes, safe);

    for (size_t i = 0; i < safes.nr; i++)
        if (under(real, safes.v[i]))
            goto out;
    for (size_t i = 0; i < dirs.nr; i++) {
        if (under(real, dirs.v[i])) {
            rc = fail("not allowed to copy images from '%s' (%s is a restricted directory; "
                      "list it in the datastore's SAFE_DIRS to allow it)",
                      path, dirs.v[i]);
            break;
        }
    }
out:
    strvec_clear(&dirs);
    strvec_clear(&safes);
    return rc;
}

int ds_detect_format(const char *path, char **format, uint64_t *virtual_size)
{
    struct image_info ii;
    struct cmd c = CMD_INIT;
    int rc;

    if (image_probe_path(path, &ii) < 0)
        return -1;
    if (!streq(ii.format, "raw") && ii.size_known) {
        *format = xstrdup(ii.format);
        *virtual_size = ii.virtual_size;
        image_info_release(&ii);
        return 0;
    }
    image_info_release(&ii);
    /* No header we know: let qemu-img's probe decide, as OpenNebula does. */
    qi_info(&c, path, 0);
    rc = cmd_run(&c);
    if (rc == 0)
        rc = qi_parse_info(c.out.buf, format, virtual_size);
    cmd_release(&c);
    return rc;
}

int ds_verify_and_publish(const char *tmp, const char *final, const char *format)
{
    if (config_bool("VERIFY_COPIES") && !streq(format, "raw")) {
        struct cmd c = CMD_INIT;

        qi_check(&c, tmp, format, 0);
        if (cmd_run_status(&c) < 0 || !qi_check_ok(c.status)) {
            if (!failed())
                cmd_fail(&c);
            fail_context("the copy failed its integrity check");
            cmd_release(&c);
            unlink(tmp);
            return -1;
        }
        cmd_release(&c);
    }
    if (publish(tmp, final) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

char *ds_image_head(const char *source_norm)
{
    _cleanup_free_ char *dir = xasprintf("%s.snap", source_norm);
    DIR *d = opendir(dir);
    struct dirent *de;
    long long best = -1;

    if (!d)
        return xstrdup(source_norm);
    while ((de = readdir(d))) {
        uint64_t v;

        if (parse_u64(de->d_name, INT_MAX, &v) == 0 && (long long)v > best)
            best = (long long)v;
    }
    closedir(d);
    if (best < 0)
        return xstrdup(source_norm);
    return xasprintf("%s/%lld", dir, best);
}
