/* test_snapimg.c - which images onesnap calls snapshots, and what it reads
 * of them: oned's own save-as images from the real oned's captures, the
 * attributes qcow2c's hot and deferred saves add, filters and pages. */
#include "testlib.h"

#include "snapimg.h"
#include "xml.h"

TestSuite(snapimg, .timeout = 30);

static struct xml *load(const char *rel, const char *root)
{
    struct sbuf sb = SBUF_INIT;
    struct xml *x;

    test_read_fixture(rel, &sb);
    x = xml_doc_parse(sb.buf, sb.len, root);
    cr_assert_not_null(x, "%s: %s", rel, fail_reason());
    sbuf_release(&sb);
    return x;
}

/* An IMAGE document with `tmpl` as its TEMPLATE's content. */
static struct xml *image_with(const char *tmpl)
{
    char *doc = xasprintf("<IMAGE><ID>21</ID><UID>5</UID><GID>100</GID><UNAME>alice</UNAME>"
                          "<GNAME>users</GNAME><NAME>db before upgrade</NAME><TYPE>2</TYPE>"
                          "<PERSISTENT>1</PERSISTENT><REGTIME>1795457533</REGTIME>"
                          "<SIZE>1024</SIZE><STATE>2</STATE><RUNNING_VMS>1</RUNNING_VMS>"
                          "<DATASTORE_ID>1</DATASTORE_ID><DATASTORE>default</DATASTORE>"
                          "<TEMPLATE>%s</TEMPLATE></IMAGE>",
                          tmpl);
    struct xml *x = xml_doc_parse(doc, strlen(doc), "IMAGE");

    cr_assert_not_null(x, "%s", doc);
    free(doc);
    return x;
}

Test(snapimg, oned_saveas_image_from_the_capture)
{
    struct xml *x = load("xmlrpc/image.info.saveas-ready.inner.xml", "IMAGE");
    struct snapimg s;

    cr_assert_eq(snapimg_read(x, "/IMAGE", &s), 1, "%s", fail_reason());
    cr_assert_eq(s.id, 13);
    cr_assert_eq(s.how, SNAP_SAVEAS);
    cr_assert_eq(s.vm_id, 6);
    cr_assert_eq(s.disk_id, 0);
    cr_assert_str_eq(s.name, "xr-saved");
    cr_assert_str_eq(s.uname, "oneadmin");
    cr_assert_str_eq(snapimg_state_str(s.state), "READY");
    cr_assert_eq(s.size_mb, 64);
    cr_assert_eq(s.ds_id, 105);
    /* no instant recorded: the registration time stands for it */
    cr_assert_str_eq(s.when, "2026-11-23T18:12:20Z");
    cr_assert_str_eq(s.consistency, "");
    snapimg_release(&s);
    xml_free(x);
}

Test(snapimg, pool_from_the_capture_keeps_only_saves)
{
    struct xml *x = load("xmlrpc/imagepool.info.inner.xml", "IMAGE_POOL");
    int n = xml_count(x, "/IMAGE_POOL/IMAGE"), snaps = 0;

    cr_assert_eq(n, 8);
    for (int i = 1; i <= n; i++) {
        char *base = xasprintf("/IMAGE_POOL/IMAGE[%d]", i);
        struct snapimg s;
        int rc = snapimg_read(x, base, &s);

        cr_assert_geq(rc, 0, "%s: %s", base, fail_reason());
        if (rc == 1) {
            snaps++;
            cr_assert(s.id == 12 || s.id == 13, "image %d", s.id);
            cr_assert_eq(s.vm_id, 6);
            snapimg_release(&s);
        } else {
            cr_assert_null(s.name);
        }
        free(base);
    }
    cr_assert_eq(snaps, 2);
    xml_free(x);
}

Test(snapimg, hot_save)
{
    struct xml *x = image_with("<SAVED_VM_ID>7</SAVED_VM_ID><SAVED_DISK_ID>1</SAVED_DISK_ID>"
                               "<HOT_SAVE_INSTANT>2026-12-07T18:00:01.250Z</HOT_SAVE_INSTANT>"
                               "<HOT_SAVE_CONSISTENCY>filesystem-frozen</HOT_SAVE_CONSISTENCY>");
    struct snapimg s;

    cr_assert_eq(snapimg_read(x, "/IMAGE", &s), 1, "%s", fail_reason());
    cr_assert_eq(s.how, SNAP_HOT);
    cr_assert_str_eq(snapimg_how_str(s.how), "hot");
    cr_assert_eq(s.vm_id, 7);
    cr_assert_eq(s.disk_id, 1);
    cr_assert_str_eq(s.when, "2026-12-07T18:00:01.250Z");
    cr_assert_str_eq(s.consistency, "filesystem-frozen");
    cr_assert(s.persistent);
    cr_assert_eq(s.running_vms, 1);
    cr_assert_str_eq(snapimg_state_str(s.state), "USED");
    snapimg_release(&s);
    xml_free(x);
}

Test(snapimg, deferred_save)
{
    struct xml *x = image_with("<QCOW2C_SAVED_VM_ID>40</QCOW2C_SAVED_VM_ID>"
                               "<QCOW2C_SAVED_DISK_ID>0</QCOW2C_SAVED_DISK_ID>"
                               "<QCOW2C_SAVED_AT>1796666402</QCOW2C_SAVED_AT>"
                               "<QCOW2C_SHUTDOWN>hard</QCOW2C_SHUTDOWN>"
                               "<QCOW2C_CONSISTENCY>crash-consistent</QCOW2C_CONSISTENCY>");
    struct snapimg s;

    cr_assert_eq(snapimg_read(x, "/IMAGE", &s), 1, "%s", fail_reason());
    cr_assert_eq(s.how, SNAP_DEFERRED);
    cr_assert_eq(s.vm_id, 40);
    cr_assert_eq(s.disk_id, 0);
    cr_assert_str_eq(s.when, "2026-12-07T18:00:02Z");
    cr_assert_str_eq(s.shutdown, "hard");
    cr_assert_str_eq(s.consistency, "crash-consistent");
    snapimg_release(&s);
    xml_free(x);
}

Test(snapimg, not_a_save_and_malformed)
{
    struct xml *x = image_with("<DEV_PREFIX>vd</DEV_PREFIX>");
    struct snapimg s;

    cr_assert_eq(snapimg_read(x, "/IMAGE", &s), 0);
    xml_free(x);
    x = image_with("<SAVED_VM_ID>seven</SAVED_VM_ID><SAVED_DISK_ID>0</SAVED_DISK_ID>");
    cr_assert_eq(snapimg_read(x, "/IMAGE", &s), -1);
    cr_assert(strstr(fail_reason(), "image 21"), "%s", fail_reason());
    fail_reset();
    xml_free(x);
    x = image_with("<SAVED_VM_ID>7</SAVED_VM_ID>"); /* no disk id */
    cr_assert_eq(snapimg_read(x, "/IMAGE", &s), -1);
    fail_reset();
    xml_free(x);
    x = xml_doc_parse("<IMAGE><ID>x</ID></IMAGE>", 25, "IMAGE");
    cr_assert_eq(snapimg_read(x, "/IMAGE", &s), -1);
    fail_reset();
    xml_free(x);
}

Test(snapimg, filters)
{
    struct snapimg s = {
        .id = 3, .name = (char *)"web before upgrade", .vm_id = 7, .how = SNAP_HOT
    };
    struct snap_filter f = SNAP_FILTER_INIT;
    enum snap_how how;

    cr_assert(snapimg_matches(&s, &f));
    f.vm_id = 8;
    cr_assert_not(snapimg_matches(&s, &f));
    f.vm_id = 7;
    f.name = "before";
    cr_assert(snapimg_matches(&s, &f));
    f.name = "after";
    cr_assert_not(snapimg_matches(&s, &f));
    f.name = NULL;
    f.how = SNAP_DEFERRED;
    cr_assert_not(snapimg_matches(&s, &f));
    cr_assert_eq(snapimg_how_parse("deferred", &how), 0);
    cr_assert_eq(how, SNAP_DEFERRED);
    cr_assert_eq(snapimg_how_parse("-", &how), -1);
    cr_assert_eq(snapimg_how_parse("HOT", &how), -1);
    cr_assert_str_eq(snapimg_state_str(10), "LOCKED_USED_PERS");
    cr_assert_str_eq(snapimg_state_str(11), "?");
    cr_assert_str_eq(snapimg_state_str(-1), "?");
}

Test(snapimg, pages)
{
    size_t first, n;

    cr_assert_eq(snap_pages(0, 20), 1);
    cr_assert_eq(snap_pages(20, 20), 1);
    cr_assert_eq(snap_pages(21, 20), 2);
    cr_assert_eq(snap_page(0, 1, 20, &first, &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(snap_page(45, 3, 20, &first, &n), 0);
    cr_assert_eq(first, 40);
    cr_assert_eq(n, 5);
    cr_assert_eq(snap_page(45, 2, 20, &first, &n), 0);
    cr_assert_eq(first, 20);
    cr_assert_eq(n, 20);
    cr_assert_eq(snap_page(45, 4, 20, &first, &n), -1);
    cr_assert_eq(snap_page(45, 0, 20, &first, &n), -1);
    cr_assert_eq(snap_page(45, 1, 0, &first, &n), -1);
}
