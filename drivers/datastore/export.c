/*
 * export APP_ID  (stdin: DS_DRIVER_ACTION_DATA with IMAGE and DATASTORE; run
 * by the marketplace driver, APP_ID is the marketplace app being created)
 *
 * Tells the marketplace where to read the image from, on one line:
 *   <IMPORT_INFO><IMPORT_SOURCE>path</IMPORT_SOURCE><MD5>..</MD5>
 *   <SIZE>MB</SIZE><FORMAT>fmt</FORMAT><DISPOSE>NO|YES</DISPOSE>
 *   [<DISPOSE_CMD>..</DISPOSE_CMD>]</IMPORT_INFO>
 *
 * A self-contained image is exported in place (DISPOSE NO). When the
 * image's current content is a qcow2 chain in SOURCE.snap (a persistent image
 * with snapshots), exporting SOURCE would publish stale or incomplete data:
 * the chain is flattened into a temporary file beside SOURCE, which the
 * marketplace removes after the upload (DISPOSE YES, DISPOSE_CMD).
 */
#include "ds_actions.h"

#include "cleanup.h"
#include "config.h"
#include "dsutil.h"
#include "fsutil.h"
#include "image.h"
#include "log.h"
#include "qemu_img.h"
#include "quote.h"
#include "stream.h"

static int md5_of(const char *path, char **hex)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct sink *md5 = digest_sink_new(null_sink_new(), DIGEST_MD5);
    int rc;

    if (fd < 0) {
        sink_free(md5);
        return fail_errno("cannot read '%s'", path);
    }
    rc = fd_pump(fd, path, md5);
    if (rc == 0)
        rc = sink_close(md5);
    if (rc == 0)
        *hex = xstrdup(digest_sink_hex(md5));
    sink_free(md5);
    return rc;
}

static int flatten(const char *head, const struct image_info *ii, const char *out)
{
    _cleanup_free_ char *tmp = part_name(out);
    struct cmd c = CMD_INIT;
    int rc;

    if (unlink_if_exists(tmp) < 0)
        return -1;
    qi_convert(&c, head, ii->format, tmp, "qcow2", 0);
    rc = cmd_run(&c);
    cmd_release(&c);
    if (rc == 0)
        rc = ds_verify_and_publish(tmp, out, "qcow2");
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int ds_export(struct action_ctx *ctx)
{
    struct ds ds;
    struct image_info ii = { 0 };
    _cleanup_free_ char *source = img_attr(ctx->ds, "SOURCE");
    _cleanup_free_ char *size = img_attr(ctx->ds, "SIZE");
    _cleanup_free_ char *norm = NULL;
    _cleanup_free_ char *head = NULL;
    _cleanup_free_ char *out = NULL;
    _cleanup_free_ char *md5 = NULL;
    struct sbuf dispose = SBUF_INIT;
    const char *export_path, *format;
    int rc = -1;

    if (ds_load(ctx->ds, &ds) < 0)
        return -1;
    if (ds_check_source(&ds, source, &norm) < 0)
        goto out;
    head = ds_image_head(norm);
    if (image_probe_path(head, &ii) < 0)
        goto out;
    export_path = source;
    format = ii.format;
    if (!streq(head, norm) || !image_is_standalone(&ii)) {
        out = xasprintf("%s.export-%d", norm, ctx->id);
        log_info("flattening %s for export into %s", head, out);
        if (flatten(head, &ii, out) < 0)
            goto out;
        export_path = out;
        format = "qcow2";
        sbuf_adds(&dispose, "rm -f ");
        sq_quote(&dispose, out);
    }
    if (md5_of(export_path, &md5) < 0)
        goto out;
    printf("<IMPORT_INFO><IMPORT_SOURCE><![CDATA[%s]]></IMPORT_SOURCE>"
           "<MD5><![CDATA[%s]]></MD5><SIZE><![CDATA[%s]]></SIZE>"
           "<FORMAT><![CDATA[%s]]></FORMAT><DISPOSE>%s</DISPOSE>",
           export_path, md5, size ? size : "", format, out ? "YES" : "NO");
    if (out)
        printf("<DISPOSE_CMD><![CDATA[%s]]></DISPOSE_CMD>", dispose.buf);
    printf("</IMPORT_INFO>\n");
    rc = 0;
out:
    sbuf_release(&dispose);
    image_info_release(&ii);
    ds_release(&ds);
    return rc;
}
