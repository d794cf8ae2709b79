/*
 * rm IMAGE_ID  (stdin: DS_DRIVER_ACTION_DATA with IMAGE and DATASTORE)
 *
 * Deletes an image: SOURCE, its snapshot directory SOURCE.snap (the qcow2c
 * layout), SOURCE.md5sum, any temporary file a failed copy left beside it,
 * and the flattened copies export made (SOURCE.export-<app id>) that the
 * marketplace did not dispose of. stdout: nothing.
 *
 * Unlike OpenNebula's fs/rm, a SOURCE that is already gone is success: after a
 * failed save-as the image has a SOURCE that was never written (protocol
 * §3.1, trap 32), and a retried delete must converge. A SOURCE outside the
 * datastore directory is refused. The image's lock is taken first, so a
 * copy still writing this image (a save-as whose image was deleted meanwhile,
 * trap 19) finishes or fails before the files go.
 */
#include "ds_actions.h"

#include <dirent.h>

#include "cleanup.h"
#include "config.h"
#include "dsutil.h"
#include "fsutil.h"
#include "hostpath.h"
#include "lock.h"
#include "log.h"

static const char *const leftovers[] = { "", ".snap", ".md5sum", ".part", ".part.conv",
                                         ".lnk" };

/* SOURCE.export-<app id>[.part]: see export.c. */
static int rm_exports(const char *norm, bool *any)
{
    _cleanup_free_ char *dir = path_dirname(norm);
    _cleanup_free_ char *prefix = xasprintf("%s.export-", path_basename(norm));
    DIR *d = opendir(dir);
    struct dirent *de;
    int rc = 0;

    if (!d)
        return errno == ENOENT ? 0 : fail_errno("cannot read '%s'", dir);
    while (rc == 0 && (de = readdir(d))) {
        if (starts_with(de->d_name, prefix)) {
            _cleanup_free_ char *p = path_join(dir, de->d_name);

            *any = true;
            rc = rm_rf(p);
        }
    }
    closedir(d);
    return rc;
}

int ds_rm(struct action_ctx *ctx)
{
    struct ds ds;
    struct lock lk = LOCK_INIT;
    _cleanup_free_ char *source = img_attr(ctx->ds, "SOURCE");
    _cleanup_free_ char *norm = NULL;
    bool any = false;
    int rc = -1;

    if (ds_load(ctx->ds, &ds) < 0)
        return -1;
    if (str_empty(source) || streq(source, "-")) {
        log_info("image %d has no SOURCE: nothing to remove", ctx->id);
        ds_release(&ds);
        return 0;
    }
    if (ds_check_source(&ds, source, &norm) < 0 ||
        lock_take_path(&lk, norm, config_uint("LOCK_TIMEOUT")) < 0)
        goto out;
    for (size_t i = 0; i < ARRAY_SIZE(leftovers); i++) {
        _cleanup_free_ char *p = xasprintf("%s%s", norm, leftovers[i]);
        struct stat st;

        if (lstat(p, &st) < 0)
            continue;
        any = true;
        if (rm_rf(p) < 0)
            goto out;
    }
    if (rm_exports(norm, &any) < 0)
        goto out;
    if (any)
        log_info("removed %s from the image repository", source);
    else
        log_info("%s was already gone", source);
    rc = 0;
out:
    lock_release(&lk);
    ds_release(&ds);
    return rc;
}
