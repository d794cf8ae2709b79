/* test_dsave.c - deferred save requests (dsave.h): what onesnap writes is
 * what the TM reads back, malformed requests are refused, the shutdown
 * kind is read from the history as oned records it. */
#include "testlib.h"

#include "dsave.h"
#include "xml.h"

TestSuite(dsave, .timeout = 30);

/* A VM document whose USER_TEMPLATE holds `user` and whose last history
 * record has ACTION `action` (-1: no history). */
static struct xml *vm_with(const char *user, int lcm, int action)
{
    char *doc, *hist;
    struct xml *x;

    hist = action < 0 ? xstrdup("<HISTORY_RECORDS/>")
                      : xasprintf("<HISTORY_RECORDS><HISTORY><SEQ>0</SEQ><ACTION>0</ACTION>"
                                  "</HISTORY><HISTORY><SEQ>1</SEQ><ACTION>%d</ACTION>"
                                  "</HISTORY></HISTORY_RECORDS>",
                                  action);
    doc = xasprintf("<VM><ID>7</ID><UID>5</UID><LCM_STATE>%d</LCM_STATE><TEMPLATE>"
                    "<DISK><DISK_ID>0</DISK_ID><IMAGE_ID>3</IMAGE_ID></DISK></TEMPLATE>"
                    "<USER_TEMPLATE>%s</USER_TEMPLATE>%s</VM>",
                    lcm, user, hist);
    x = xml_doc_parse(doc, strlen(doc), "VM");
    cr_assert_not_null(x, "%s", doc);
    free(doc);
    free(hist);
    return x;
}

/* The template dsave_template writes, placed in a USER_TEMPLATE as oned's
 * merge leaves it (its root element dropped). */
static struct xml *vm_with_request(const struct dsave_req *r)
{
    char *t = dsave_template(r), *inner;
    struct xml *x;
    size_t len = strlen(t);

    cr_assert(starts_with(t, "<TEMPLATE>") && ends_with(t, "</TEMPLATE>"), "%s", t);
    inner = xstrndup(t + strlen("<TEMPLATE>"), len - strlen("<TEMPLATE></TEMPLATE>"));
    x = vm_with(inner, 11, 27);
    free(inner);
    free(t);
    return x;
}

Test(dsave, round_trip)
{
    struct dsave_req w, r;
    struct xml *vm;

    dsave_init(&w, 2);
    w.state = DSAVE_PENDING;
    w.name = xstrdup("disk 0 (before upgrade) é");
    w.type = xstrdup("DATABLOCK");
    w.persistent = true;
    w.ds_id = 1;
    w.requested = 1796000000;
    w.requested_by = xstrdup("alice");
    vm = vm_with_request(&w);
    cr_assert_eq(dsave_read(vm, 2, &r), 0, "%s", fail_reason());
    cr_assert_eq(r.state, DSAVE_PENDING);
    cr_assert_str_eq(r.name, w.name);
    cr_assert_str_eq(r.type, "DATABLOCK");
    cr_assert(r.persistent);
    cr_assert_eq(r.ds_id, 1);
    cr_assert_eq(r.requested, 1796000000);
    cr_assert_str_eq(r.requested_by, "alice");
    cr_assert_eq(r.image_id, -1);
    cr_assert_eq(r.shutdown, DSAVE_SHUTDOWN_UNKNOWN);
    cr_assert(dsave_is_pending(&r));
    dsave_release(&r);
    /* another disk has no request */
    cr_assert_eq(dsave_read(vm, 0, &r), 0);
    cr_assert_eq(r.state, DSAVE_NONE);
    cr_assert_not(dsave_is_pending(&r));
    xml_free(vm);
    dsave_release(&w);
}

Test(dsave, saved_and_skipped)
{
    struct dsave_req w, r;
    struct xml *vm;

    dsave_init(&w, 0);
    w.state = DSAVE_SAVED;
    w.name = xstrdup("n");
    w.type = xstrdup("OS");
    w.ds_id = 1;
    w.requested = 5;
    w.shutdown = DSAVE_HARD;
    w.image_id = 42;
    w.saved = 9;
    vm = vm_with_request(&w);
    cr_assert_eq(dsave_read(vm, 0, &r), 0, "%s", fail_reason());
    cr_assert_eq(r.state, DSAVE_SAVED);
    cr_assert_eq(r.image_id, 42);
    cr_assert_eq(r.saved, 9);
    cr_assert_eq(r.shutdown, DSAVE_HARD);
    cr_assert_not(r.persistent);
    cr_assert_not(dsave_is_pending(&r));
    dsave_release(&r);
    xml_free(vm);
    w.state = DSAVE_SKIPPED;
    w.reason = xstrdup("why");
    vm = vm_with_request(&w);
    cr_assert_eq(dsave_read(vm, 0, &r), 0, "%s", fail_reason());
    cr_assert_eq(r.state, DSAVE_SKIPPED);
    cr_assert_str_eq(r.reason, "why");
    dsave_release(&r);
    xml_free(vm);
    dsave_release(&w);
}

static void expect_malformed(const char *inner)
{
    char *user = xasprintf("<QCOW2C_DEFERRED_SAVE_0>%s</QCOW2C_DEFERRED_SAVE_0>", inner);
    struct xml *vm = vm_with(user, 11, 27);
    struct dsave_req r;

    fail_reset();
    cr_assert_eq(dsave_read(vm, 0, &r), -1, "accepted: %s", inner);
    cr_assert(strstr(fail_reason(), "QCOW2C_DEFERRED_SAVE_0"), "%s", fail_reason());
    cr_assert_null(r.name);
    xml_free(vm);
    free(user);
}

#define GOOD_TAIL "<DATASTORE_ID>1</DATASTORE_ID><REQUESTED>10</REQUESTED>"

Test(dsave, malformed)
{
    expect_malformed("<NAME>x</NAME><TYPE>OS</TYPE>" GOOD_TAIL); /* no STATE */
    expect_malformed("<NAME>x</NAME><TYPE>OS</TYPE><STATE>DONE</STATE>" GOOD_TAIL);
    expect_malformed("<NAME></NAME><TYPE>OS</TYPE><STATE>PENDING</STATE>" GOOD_TAIL);
    expect_malformed("<NAME>a/b</NAME><TYPE>OS</TYPE><STATE>PENDING</STATE>" GOOD_TAIL);
    expect_malformed("<NAME>x</NAME><TYPE>KERNEL</TYPE><STATE>PENDING</STATE>" GOOD_TAIL);
    expect_malformed("<NAME>x</NAME><TYPE>OS</TYPE><STATE>PENDING</STATE>"
                     "<REQUESTED>10</REQUESTED>"); /* no datastore */
    expect_malformed("<NAME>x</NAME><TYPE>OS</TYPE><STATE>PENDING</STATE>"
                     "<DATASTORE_ID>one</DATASTORE_ID><REQUESTED>10</REQUESTED>");
    expect_malformed("<NAME>x</NAME><TYPE>OS</TYPE><STATE>PENDING</STATE>"
                     "<PERSISTENT>maybe</PERSISTENT>" GOOD_TAIL);
    expect_malformed("<NAME>x</NAME><TYPE>OS</TYPE><STATE>SAVED</STATE>" GOOD_TAIL);
    expect_malformed("<NAME>x</NAME><TYPE>OS</TYPE><STATE>SAVING</STATE>"
                     "<SHUTDOWN>soft</SHUTDOWN>" GOOD_TAIL);
    /* a single attribute of our name is not a request either */
    {
        struct xml *vm = vm_with("<QCOW2C_DEFERRED_SAVE_0>x</QCOW2C_DEFERRED_SAVE_0>", 11, 27);
        struct dsave_req r;

        cr_assert_eq(dsave_read(vm, 0, &r), -1);
        xml_free(vm);
    }
}

Test(dsave, cancel_template_is_an_empty_vector)
{
    char *t = dsave_cancel_template(3);

    cr_assert_str_eq(t, "QCOW2C_DEFERRED_SAVE_3 = [ ]\n");
    free(t);
    t = dsave_attr_name(12);
    cr_assert_str_eq(t, "QCOW2C_DEFERRED_SAVE_12");
    free(t);
}

Test(dsave, file_name_is_deterministic)
{
    char *a = dsave_file_name(7, 1, 1796000000), *b = dsave_file_name(7, 1, 1796000000);
    char *c = dsave_file_name(7, 1, 1796000001);

    cr_assert_str_eq(a, "qcow2c-saved-7-1-1796000000");
    cr_assert_str_eq(a, b);
    cr_assert_str_neq(a, c);
    free(a);
    free(b);
    free(c);
}

Test(dsave, shutdown_kind)
{
    static const struct {
        int lcm, action;
        enum dsave_shutdown want;
    } cases[] = {
        { 11, 27, DSAVE_GRACEFUL },         /* terminate: EPILOG */
        { 11, 28, DSAVE_HARD },             /* terminate --hard */
        { 23, 13, DSAVE_HARD },             /* recover --delete: CLEANUP_DELETE */
        { 23, 0, DSAVE_HARD },              /* CLEANUP_DELETE alone */
        { 15, 14, DSAVE_HARD },             /* recover --recreate */
        { 40, 43, DSAVE_SHUTDOWN_UNKNOWN }, /* retry: the first attempt recorded it */
        { 11, -1, DSAVE_SHUTDOWN_UNKNOWN }, /* no history */
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct xml *vm = vm_with("", cases[i].lcm, cases[i].action);

        cr_assert_eq(dsave_shutdown_of(vm), cases[i].want, "lcm %d action %d", cases[i].lcm,
                     cases[i].action);
        xml_free(vm);
    }
}

Test(dsave, names_and_types)
{
    cr_assert_eq(dsave_name_check("disk 0 before upgrade"), 0);
    cr_assert_eq(dsave_name_check("été"), 0);
    cr_assert_eq(dsave_name_check(""), -1);
    cr_assert_eq(dsave_name_check("a;b"), -1);
    cr_assert_eq(dsave_name_check("a\tb"), -1);
    cr_assert_eq(dsave_name_check("a\x01"), -1);
    {
        char long_name[130];

        memset(long_name, 'x', 129);
        long_name[129] = '\0';
        cr_assert_eq(dsave_name_check(long_name), -1);
        long_name[128] = '\0';
        cr_assert_eq(dsave_name_check(long_name), 0);
    }
    cr_assert(dsave_type_valid("OS"));
    cr_assert(dsave_type_valid("CDROM"));
    cr_assert(dsave_type_valid("DATABLOCK"));
    cr_assert_not(dsave_type_valid("os"));
    cr_assert_not(dsave_type_valid("KERNEL"));
    cr_assert_not(dsave_type_valid(NULL));
    cr_assert_str_eq(dsave_type_name(0), "OS");
    cr_assert_str_eq(dsave_type_name(1), "CDROM");
    cr_assert_str_eq(dsave_type_name(2), "DATABLOCK");
    cr_assert_null(dsave_type_name(3));
}
