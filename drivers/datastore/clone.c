/*
 * clone IMAGE_ID  (stdin: DS_DRIVER_ACTION_DATA; IMAGE/PATH = the SOURCE of
 * the image being cloned, DATASTORE = the target datastore)
 *
 * `oneimage clone`: makes a new, independent image file BASE_PATH/<hash>
 * holding the source image's current content. stdout: "<SOURCE> <FORMAT>".
 *
 * In the qcow2c layout a persistent image's current content may live at the
 * top of SOURCE.snap/ (snapshots taken while a VM used it), so that file is
 * what gets copied. A self-contained source in the wanted format is copied as
 * a file (reflink or in-kernel extent copy: holes stay holes); a chain, a file
 * with internal snapshots or a format change goes through qemu-img convert,
 * which flattens. The copy is checked and renamed into place only when
 * complete; a failure leaves nothing behind.
 */
#include "ds_actions.h"

#include "cleanup.h"
#include "config.h"
#include "copy.h"
#include "dsutil.h"
#include "fsutil.h"
#include "hostpath.h"
#include "image.h"
#include "lock.h"
#include "log.h"
#include "qemu_img.h"

static int copy_image(const char *head, const struct image_info *ii, const char *format,
                      const char *tmp, bool sparse)
{
    struct copy_result res;
    struct cmd c = CMD_INIT;
    int rc;

    if (image_is_standalone(ii) && ii->nb_snapshots == 0 && streq(ii->format, format)) {
        if (copy_file(head, tmp, sparse, &res) < 0)
            return -1;
        log_debug("copied %llu bytes by %s", (unsigned long long)res.data_bytes, res.method);
        return 0;
    }
    qi_convert(&c, head, ii->format, tmp, format, sparse ? 0 : QI_PREALLOC);
    rc = cmd_run(&c);
    cmd_release(&c);
    return rc;
}

int ds_clone(struct action_ctx *ctx)
{
    struct ds ds;
    struct lock lk = LOCK_INIT;
    struct image_info ii = { 0 };
    _cleanup_free_ char *src = img_attr(ctx->ds, "PATH");
    _cleanup_free_ char *src_bridge =
        xml_get(ctx->ds, "/DS_DRIVER_ACTION_DATA/SOURCE_BRIDGE_LIST");
    _cleanup_free_ char *src_norm = NULL;
    _cleanup_free_ char *head = NULL;
    _cleanup_free_ char *source = NULL;
    _cleanup_free_ char *final = NULL;
    _cleanup_free_ char *tmp = NULL;
    const char *format;
    int rc = -1;

    if (ds_load(ctx->ds, &ds) < 0)
        return -1;
    if (!str_empty(src_bridge)) {
        fail("the source datastore uses a BRIDGE_LIST, which qcow2c does not support");
        goto out;
    }
    if (str_empty(src) || src[0] != '/') {
        fail("the image to clone has no usable SOURCE ('%s')", src ? src : "");
        goto out;
    }
    src_norm = path_normalize(src);
    head = ds_image_head(src_norm);
    if (image_probe_path(head, &ii) < 0)
        goto out;
    if (!streq(ii.format, "raw") && !streq(ii.format, "qcow2") && !ii.size_known) {
        fail("cannot clone '%s': format %s is not handled (raw or qcow2 expected)", head,
             ii.format);
        goto out;
    }
    format = *ds.driver ? ds.driver : ii.format;
    source = ds_new_source(&ds, ctx->id);
    final = path_normalize(source);
    tmp = part_name(final);
    if (mkdir_p(ds.base_norm, 0755) < 0 ||
        lock_take_path(&lk, final, config_uint("LOCK_TIMEOUT")) < 0 ||
        unlink_if_exists(tmp) < 0)
        goto out;
    log_info("cloning %s into %s", head, source);
    if (copy_image(head, &ii, format, tmp, ds.sparse) < 0) {
        unlink(tmp);
        goto out;
    }
    if (ds_verify_and_publish(tmp, final, format) < 0)
        goto out;
    printf("%s %s\n", source, format);
    rc = 0;
out:
    image_info_release(&ii);
    lock_release(&lk);
    ds_release(&ds);
    return rc;
}
