/* test_xml.c - XPath queries on a real VM document, and documents that try
 * to make the parser read files or expand without bound. */
#include "testlib.h"

#include <sys/wait.h>

#include "run.h"
#include "xml.h"

TestSuite(xml, .timeout = 30);

static struct xml *load_fixture(const char *rel, const char *root)
{
    char *path = test_fixture(rel);
    struct sbuf sb = SBUF_INIT;
    struct xml *x;

    cr_assert_eq(sbuf_read_file(&sb, path, 0), 0, "cannot read fixture %s: %s", path,
                 strerror(errno));
    x = xml_doc_parse(sb.buf, sb.len, root);
    cr_assert_not_null(x, "%s: %s", path, fail_reason());
    sbuf_release(&sb);
    free(path);
    return x;
}

static struct xml *vm_doc(void)
{
    return load_fixture("xmlrpc/vm.info.running.inner.xml", "VM");
}

/* ---- stderr capture: libxml2 must not print anything ---- */
static int saved_stderr = -1;
static FILE *capture_file;

static void capture_start(void)
{
    fflush(stderr);
    capture_file = tmpfile();
    cr_assert_not_null(capture_file);
    saved_stderr = dup(STDERR_FILENO);
    cr_assert_eq(dup2(fileno(capture_file), STDERR_FILENO), STDERR_FILENO);
}

static char *capture_end(void)
{
    struct sbuf sb = SBUF_INIT;

    fflush(stderr);
    cr_assert_eq(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
    close(saved_stderr);
    cr_assert_eq(lseek(fileno(capture_file), 0, SEEK_SET), 0);
    cr_assert_eq(sbuf_read_fd(&sb, fileno(capture_file), 0), 0);
    fclose(capture_file);
    return sbuf_detach(&sb);
}

static void assert_get(const struct xml *x, const char *want, const char *expr)
{
    char *s = xml_get(x, "%s", expr);

    cr_assert_not_null(s, "%s is missing", expr);
    cr_assert_str_eq(s, want, "%s", expr);
    free(s);
}

Test(xml, simple_paths_on_the_captured_vm)
{
    struct xml *vm = vm_doc();

    assert_get(vm, "6", "/VM/ID");
    assert_get(vm, "xr-vm", "/VM/NAME");
    assert_get(vm, "3", "/VM/LCM_STATE");
    assert_get(vm, "node1:xr-vm:dummy", "/VM/DEPLOY_ID");
    /* CDATA reads as text */
    assert_get(vm, "qcow2c", "/VM/TEMPLATE/TM_MAD_SYSTEM");
    assert_get(vm, "(\"CLUSTERS/ID\" @> 0)", "/VM/TEMPLATE/AUTOMATIC_DS_REQUIREMENTS");
    assert_get(vm, "(CLUSTER_ID = 0) & !(PIN_POLICY = PINNED)",
               "/VM/TEMPLATE/AUTOMATIC_REQUIREMENTS");
    assert_get(vm, "sdb", "/VM/TEMPLATE/CONTEXT/TARGET");
    assert_get(vm, "3", "/VM/TEMPLATE/CONTEXT/DISK_ID");
    xml_free(vm);
}

Test(xml, disk_by_id)
{
    static const struct {
        int id;
        const char *target, *source, *tm;
    } disks[] = {
        { 0, "sda", "/var/lib/one//datastores/105/7e91d9b535115238b613f67efae9b5b3", "qcow2c" },
        { 1, "sdc", "/var/lib/one//datastores/105/db9b29b4c5e38529eaccb6cfd2f8b4c0", "qcow2c" },
        { 2, "sdd", NULL, "qcow2c" },
    };
    struct xml *vm = vm_doc();

    for (size_t i = 0; i < ARRAY_SIZE(disks); i++) {
        char *t = xml_get(vm, "/VM/TEMPLATE/DISK[DISK_ID=%d]/TARGET", disks[i].id);
        char *s = xml_get(vm, "/VM/TEMPLATE/DISK[DISK_ID=%d]/SOURCE", disks[i].id);
        char *m = xml_get(vm, "/VM/TEMPLATE/DISK[DISK_ID=%d]/TM_MAD", disks[i].id);

        cr_assert_str_eq(t, disks[i].target, "disk %d", disks[i].id);
        if (disks[i].source)
            cr_assert_str_eq(s, disks[i].source, "disk %d", disks[i].id);
        else
            cr_assert_null(s, "the volatile disk has no SOURCE");
        cr_assert_str_eq(m, disks[i].tm);
        free(t);
        free(s);
        free(m);
    }
    cr_assert_null(xml_get(vm, "/VM/TEMPLATE/DISK[DISK_ID=%d]/TARGET", 3),
                   "the context disk is not a DISK");
    cr_assert_null(xml_get(vm, "/VM/TEMPLATE/DISK[DISK_ID=%d]/TARGET", -1));
    xml_free(vm);
}

Test(xml, last_history_record)
{
    struct xml *vm = vm_doc();

    assert_get(vm, "node1", "/VM/HISTORY_RECORDS/HISTORY[last()]/HOSTNAME");
    assert_get(vm, "104", "/VM/HISTORY_RECORDS/HISTORY[last()]/DS_ID");
    assert_get(vm, "qcow2c", "/VM/HISTORY_RECORDS/HISTORY[last()]/TM_MAD");
    cr_assert_eq(xml_count(vm, "/VM/HISTORY_RECORDS/HISTORY"), 1);
    xml_free(vm);
}

/* With several records, last() is the newest (document order). */
Test(xml, last_history_record_of_several)
{
    static const char doc[] =
        "<VM><ID>9</ID><HISTORY_RECORDS>"
        "<HISTORY><SEQ>0</SEQ><HOSTNAME>node1</HOSTNAME></HISTORY>"
        "<HISTORY><SEQ>1</SEQ><HOSTNAME>node2</HOSTNAME></HISTORY>"
        "<HISTORY><SEQ>2</SEQ><HOSTNAME>node1</HOSTNAME><DS_ID>0</DS_ID></HISTORY>"
        "</HISTORY_RECORDS></VM>";
    struct xml *vm = xml_doc_parse(doc, sizeof(doc) - 1, "VM");

    cr_assert_not_null(vm, "%s", fail_reason());
    assert_get(vm, "node1", "/VM/HISTORY_RECORDS/HISTORY[last()]/HOSTNAME");
    assert_get(vm, "node2", "/VM/HISTORY_RECORDS/HISTORY[last()-1]/HOSTNAME");
    assert_get(vm, "2", "/VM/HISTORY_RECORDS/HISTORY[last()]/SEQ");
    assert_get(vm, "node1", "/VM/HISTORY_RECORDS/HISTORY/HOSTNAME"); /* the first */
    cr_assert_eq(xml_count(vm, "/VM/HISTORY_RECORDS/HISTORY"), 3);
    xml_free(vm);
}

Test(xml, counts)
{
    struct xml *vm = vm_doc();

    cr_assert_eq(xml_count(vm, "/VM/TEMPLATE/DISK"), 3);
    cr_assert_eq(xml_count(vm, "/VM/TEMPLATE/DISK[TM_MAD='qcow2c']"), 3);
    cr_assert_eq(xml_count(vm, "/VM/TEMPLATE/DISK[CLONE='YES']"), 1);
    cr_assert_eq(xml_count(vm, "/VM/TEMPLATE/DISK[SAVE='YES']"), 1);
    cr_assert_eq(xml_count(vm, "/VM/TEMPLATE/DISK[DISK_ID=%d]", 1), 1);
    cr_assert_eq(xml_count(vm, "/VM/TEMPLATE/CONTEXT"), 1);
    cr_assert_eq(xml_count(vm, "/VM/NOPE"), 0);
    cr_assert_eq(xml_count(vm, "count(/VM/TEMPLATE/DISK)"), 0, "a number is not a node set");
    xml_free(vm);
}

Test(xml, get_all_in_document_order)
{
    struct xml *vm = vm_doc();
    struct strvec v = STRVEC_INIT;

    cr_assert_eq(xml_get_all(vm, &v, "/VM/TEMPLATE/DISK/TARGET"), 3);
    cr_assert_eq(v.nr, 3);
    cr_assert_str_eq(v.v[0], "sda");
    cr_assert_str_eq(v.v[1], "sdc");
    cr_assert_str_eq(v.v[2], "sdd");
    cr_assert_eq(xml_get_all(vm, &v, "/VM/TEMPLATE/DISK/DISK_ID"), 3, "appends");
    cr_assert_eq(v.nr, 6);
    cr_assert_str_eq(v.v[3], "0");
    cr_assert_str_eq(v.v[5], "2");
    cr_assert_null(v.v[6]);
    cr_assert_eq(xml_get_all(vm, &v, "/VM/TEMPLATE/DISK/NOPE"), 0);
    cr_assert_eq(v.nr, 6);
    strvec_clear(&v);

    cr_assert_eq(xml_get_all(vm, &v, "/VM/TEMPLATE/DISK/SOURCE"), 2);
    cr_assert(ends_with(v.v[1], "db9b29b4c5e38529eaccb6cfd2f8b4c0"));
    strvec_clear(&v);
    xml_free(vm);
}

Test(xml, missing_versus_empty)
{
    struct xml *vm = vm_doc();
    char *s;

    s = xml_get(vm, "/VM/USER_TEMPLATE");
    cr_assert_not_null(s, "an empty element is not missing");
    cr_assert_str_eq(s, "");
    free(s);
    cr_assert_null(xml_get(vm, "/VM/NO_SUCH_ELEMENT"));
    cr_assert_null(xml_get(vm, "/IMAGE/ID"), "another root");

    s = xml_get_def(vm, "dflt", "/VM/USER_TEMPLATE");
    cr_assert_str_eq(s, "dflt", "empty gives the default");
    free(s);
    s = xml_get_def(vm, "dflt", "/VM/NO_SUCH_ELEMENT");
    cr_assert_str_eq(s, "dflt");
    free(s);
    s = xml_get_def(vm, "dflt", "/VM/NAME");
    cr_assert_str_eq(s, "xr-vm");
    free(s);
    cr_assert_null(xml_get_def(vm, NULL, "/VM/NO_SUCH_ELEMENT"));
    cr_assert_null(xml_get_def(vm, NULL, "/VM/USER_TEMPLATE"));
    cr_assert(!failed(), "a missing element is not a failure");
    xml_free(vm);
}

Test(xml, cdata_empty_and_string_function)
{
    static const char doc[] = "<IMAGE><SOURCE><![CDATA[]]></SOURCE>"
                              "<PATH><![CDATA[/a b/<c>&d]]></PATH><N> 7 </N></IMAGE>";
    struct xml *x = xml_doc_parse(doc, sizeof(doc) - 1, "IMAGE");
    char *s;

    cr_assert_not_null(x, "%s", fail_reason());
    assert_get(x, "", "/IMAGE/SOURCE");
    assert_get(x, "/a b/<c>&d", "/IMAGE/PATH");
    assert_get(x, " 7 ", "/IMAGE/N");
    s = xml_get(x, "string(/IMAGE/PATH)");
    cr_assert_str_eq(s, "/a b/<c>&d");
    free(s);
    xml_free(x);
}

Test(xml, get_int)
{
    struct xml *vm = vm_doc();
    long long v = 12345;

    cr_assert_eq(xml_get_int(vm, &v, "/VM/ID"), 0, "%s", fail_reason());
    cr_assert_eq(v, 6);
    cr_assert_eq(xml_get_int(vm, &v, "/VM/HISTORY_RECORDS/HISTORY[last()]/UID"), 0);
    cr_assert_eq(v, -1);
    cr_assert_eq(xml_get_int(vm, &v, "/VM/TEMPLATE/DISK[DISK_ID=%d]/SIZE", 1), 0);
    cr_assert_eq(v, 16);
    cr_assert_eq(xml_get_int(vm, &v, "/VM/STIME"), 0);
    cr_assert_eq(v, 1795457523LL);
    cr_assert(!failed());

    v = 12345;
    cr_assert_eq(xml_get_int(vm, &v, "/VM/TEMPLATE/DISK[DISK_ID=%d]/SIZE", 7), -1);
    cr_assert_str_eq(fail_reason(), "/VM/TEMPLATE/DISK[DISK_ID=7]/SIZE is missing");
    cr_assert_eq(v, 12345, "output untouched on failure");

    fail_reset();
    cr_assert_eq(xml_get_int(vm, &v, "/VM/NAME"), -1);
    cr_assert_str_eq(fail_reason(), "/VM/NAME is not a number: 'xr-vm'");
    fail_reset();
    cr_assert_eq(xml_get_int(vm, &v, "/VM/USER_TEMPLATE"), -1);
    cr_assert_str_eq(fail_reason(), "/VM/USER_TEMPLATE is not a number: ''");
    fail_reset();
    cr_assert_eq(xml_get_int(vm, &v, "/VM/TEMPLATE/CPU"), -1, "0.1 is not an integer");
    cr_assert_eq(v, 12345);
    xml_free(vm);
}

Test(xml, get_int_refuses_what_parse_i64_refuses)
{
    static const char doc[] = "<R><A>0x10</A><B>+1</B><C> 1</C><D>99999999999999999999</D>"
                              "<E>-9223372036854775808</E><F>1e3</F></R>";
    struct xml *x = xml_doc_parse(doc, sizeof(doc) - 1, "R");
    long long v = 0;

    cr_assert_not_null(x);
    cr_assert_eq(xml_get_int(x, &v, "/R/A"), -1);
    fail_reset();
    cr_assert_eq(xml_get_int(x, &v, "/R/B"), -1);
    fail_reset();
    cr_assert_eq(xml_get_int(x, &v, "/R/C"), -1);
    fail_reset();
    cr_assert_eq(xml_get_int(x, &v, "/R/D"), -1);
    fail_reset();
    cr_assert_eq(xml_get_int(x, &v, "/R/F"), -1);
    cr_assert_str_eq(fail_reason(), "/R/F is not a number: '1e3'");
    fail_reset();
    cr_assert_eq(xml_get_int(x, &v, "/R/E"), 0);
    cr_assert_eq(v, INT64_MIN);
    xml_free(x);
}

Test(xml, get_node_serialises_the_element)
{
    struct xml *vm = vm_doc();
    char *s = xml_get_node(vm, "/VM/TEMPLATE/OS");
    struct xml *os;

    cr_assert_not_null(s);
    cr_assert(starts_with(s, "<OS>"), "%s", s);
    cr_assert(ends_with(s, "</OS>"), "%s", s);
    os = xml_doc_parse(s, strlen(s), "OS");
    cr_assert_not_null(os, "%s", fail_reason());
    assert_get(os, "q35", "/OS/MACHINE");
    assert_get(os, "67d97446-2b76-4e26-994f-3e6e08d5750e", "/OS/UUID");
    xml_free(os);
    free(s);
    cr_assert_null(xml_get_node(vm, "/VM/NOPE"));
    s = xml_get_node(vm, "/VM/TEMPLATE/DISK[DISK_ID=%d]", 1);
    cr_assert_not_null(s);
    cr_assert(strstr(s, "lab-qcow2c-180947-data"), "%s", s);
    cr_assert_null(strstr(s, "lab-qcow2c-180947-os"), "only the selected disk");
    free(s);
    xml_free(vm);
}

/* ---- refusals ---- */

static void assert_refused(const char *doc, const char *root, const char *reason_start)
{
    struct xml *x;
    char *err;

    fail_reset();
    capture_start();
    x = xml_doc_parse(doc, strlen(doc), root);
    err = capture_end();
    cr_assert_null(x, "'%s' was accepted", doc);
    cr_assert(starts_with(fail_reason(), reason_start), "reason for '%s': '%s'", doc,
              fail_reason());
    cr_assert_null(strchr(fail_reason(), '\n'));
    cr_assert_str_eq(err, "", "libxml2 printed on stderr: '%s'", err);
    free(err);
}

Test(xml, malformed_documents)
{
    assert_refused("", "VM", "malformed XML");
    assert_refused("   ", "VM", "malformed XML");
    assert_refused("<VM><ID>1</VM>", "VM", "malformed XML: ");
    assert_refused("<VM><ID>1</ID>", "VM", "malformed XML: ");
    assert_refused("<VM>&nosuch;</VM>", "VM", "malformed XML: ");
    assert_refused("<VM></VM><VM></VM>", "VM", "malformed XML: ");
    assert_refused("not xml at all", NULL, "malformed XML: ");
    assert_refused("<VM a=1></VM>", "VM", "malformed XML: ");
    assert_refused("<VM>\x01</VM>", "VM", "malformed XML: ");
    assert_refused("<VM>\xff\xfe</VM>", "VM", "malformed XML: ");
}

Test(xml, malformed_reason_has_no_trailing_blank)
{
    cr_assert_null(xml_doc_parse("<VM><ID>1</VM>", 14, "VM"));
    cr_assert(!ends_with(fail_reason(), " "), "'%s'", fail_reason());
}

Test(xml, a_truncated_real_document_is_refused)
{
    char *path = test_fixture("xmlrpc/vm.info.running.inner.xml");
    struct sbuf sb = SBUF_INIT;

    cr_assert_eq(sbuf_read_file(&sb, path, 0), 0);
    cr_assert_null(xml_doc_parse(sb.buf, sb.len / 2, "VM"));
    cr_assert(starts_with(fail_reason(), "malformed XML"), "%s", fail_reason());
    sbuf_release(&sb);
    free(path);
}

Test(xml, wrong_root)
{
    assert_refused("<IMAGE><ID>1</ID></IMAGE>", "VM",
                   "unexpected XML document: the root element is <IMAGE>, not <VM>");
    cr_assert_str_eq(fail_reason(),
                     "unexpected XML document: the root element is <IMAGE>, not <VM>");
    assert_refused("<vm/>", "VM", "unexpected XML document: the root element is <vm>, not <VM>");
}

Test(xml, any_root_when_none_is_required)
{
    struct xml *x = xml_doc_parse("<IMAGE><ID>4</ID></IMAGE>", 25, NULL);

    cr_assert_not_null(x);
    assert_get(x, "4", "/IMAGE/ID");
    xml_free(x);
}

Test(xml, declaration_and_whitespace_are_fine)
{
    static const char doc[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VM>\n  <ID>3</ID>\n"
                              "  <NAME>\xc3\xa9t\xc3\xa9</NAME>\n</VM>\n";
    struct xml *x = xml_doc_parse(doc, sizeof(doc) - 1, "VM");

    cr_assert_not_null(x, "%s", fail_reason());
    assert_get(x, "3", "/VM/ID");
    assert_get(x, "\xc3\xa9t\xc3\xa9", "/VM/NAME");
    xml_free(x);
}

/* ---- hostile documents ---- */

static char *secret_file(char **dir)
{
    char *path;

    *dir = test_tmpdir();
    path = xasprintf("%s/secret", *dir);
    test_write_file(path, "QCOW2C-SECRET-MARKER\n");
    return path;
}

/* The document either fails to parse or its text holds none of the file. */
static void assert_not_read(const char *doc, const char *xpath)
{
    struct xml *x;
    char *err;
    long long t0 = monotonic_ms();

    fail_reset();
    capture_start();
    x = xml_doc_parse(doc, strlen(doc), NULL);
    if (x) {
        char *s = xml_get(x, "%s", xpath);
        char *all = xml_dump(x);

        cr_assert(!s || !strstr(s, "QCOW2C-SECRET-MARKER"), "file read: '%s'", s);
        cr_assert(!s || !strstr(s, "root:"), "/etc/passwd read: '%s'", s);
        cr_assert_null(strstr(all, "QCOW2C-SECRET-MARKER"), "%s", all);
        cr_assert_null(strstr(all, "root:x:"), "%s", all);
        free(s);
        free(all);
        xml_free(x);
    } else {
        cr_assert_null(strstr(fail_reason(), "QCOW2C-SECRET-MARKER"), "%s", fail_reason());
        cr_assert_null(strstr(fail_reason(), "root:"), "%s", fail_reason());
    }
    err = capture_end();
    cr_assert_null(strstr(err, "QCOW2C-SECRET-MARKER"), "%s", err);
    free(err);
    cr_assert_lt(monotonic_ms() - t0, 2000, "parsing took too long");
}

Test(xml, external_entities_are_not_read)
{
    char *dir, *secret = secret_file(&dir);
    char *doc;

    doc = xasprintf("<?xml version=\"1.0\"?><!DOCTYPE VM [<!ENTITY xxe SYSTEM \"file://%s\">]>"
                    "<VM><NAME>&xxe;</NAME></VM>",
                    secret);
    assert_not_read(doc, "/VM/NAME");
    free(doc);

    doc = xasprintf("<!DOCTYPE VM [<!ENTITY xxe SYSTEM \"%s\">]><VM><NAME>a&xxe;b</NAME></VM>",
                    secret);
    assert_not_read(doc, "/VM/NAME");
    free(doc);

    doc = xasprintf("<!DOCTYPE VM [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
                    "<VM><NAME>&xxe;</NAME></VM>");
    assert_not_read(doc, "/VM/NAME");
    free(doc);

    /* parameter entity */
    doc = xasprintf("<!DOCTYPE VM [<!ENTITY %% p SYSTEM \"file://%s\"> %%p;]>"
                    "<VM><NAME>x</NAME></VM>",
                    secret);
    assert_not_read(doc, "/VM/NAME");
    free(doc);

    /* external DTD */
    doc = xasprintf("<!DOCTYPE VM SYSTEM \"file://%s\"><VM><NAME>x</NAME></VM>", secret);
    assert_not_read(doc, "/VM/NAME");
    free(doc);

    /* XInclude is not processed */
    doc = xasprintf("<VM xmlns:xi=\"http://www.w3.org/2001/XInclude\"><NAME>"
                    "<xi:include href=\"file://%s\" parse=\"text\"/></NAME></VM>",
                    secret);
    assert_not_read(doc, "/VM/NAME");
    free(doc);
    free(secret);
    free(dir);
}

/* No network either: a remote DTD or entity is not fetched (the port is
 * closed; a fetch attempt would still show up as a delay or an error). */
Test(xml, network_entities_are_not_fetched)
{
    assert_not_read("<!DOCTYPE VM SYSTEM \"http://127.0.0.1:9/x.dtd\"><VM><NAME>x</NAME></VM>",
                    "/VM/NAME");
    assert_not_read("<!DOCTYPE VM [<!ENTITY e SYSTEM \"http://127.0.0.1:9/e\">]>"
                    "<VM><NAME>&e;</NAME></VM>",
                    "/VM/NAME");
}

static const char billion_laughs[] =
    "<?xml version=\"1.0\"?>\n"
    "<!DOCTYPE VM [\n"
    " <!ENTITY lol \"lol\">\n"
    " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
    " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
    " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
    " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
    " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
    " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
    " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
    " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
    " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
    "]>\n"
    "<VM><ID>1</ID><NAME>&lol9;</NAME></VM>\n";

/* Parsing and reading the text stay fast and small (the suite's timeout
 * catches a hang; the length check catches an expansion). */
static void assert_not_expanded(const char *doc)
{
    long long t0 = monotonic_ms();
    struct xml *x = xml_doc_parse(doc, strlen(doc), "VM");

    if (x) {
        char *s = xml_get(x, "/VM/NAME");
        char *node = xml_get_node(x, "/VM/NAME");
        struct strvec all = STRVEC_INIT;

        cr_assert(!s || strlen(s) < 100000, "entity expanded to %zu bytes", strlen(s));
        cr_assert(!node || strlen(node) < 100000, "node expanded to %zu bytes", strlen(node));
        xml_get_all(x, &all, "/VM/NAME");
        cr_assert(all.nr == 0 || strlen(all.v[0]) < 100000);
        free(s);
        free(node);
        strvec_clear(&all);
        xml_free(x);
    }
    cr_assert_lt(monotonic_ms() - t0, 2000, "took %lld ms", monotonic_ms() - t0);
}

/* oned never sends a DTD: a document with one is refused outright. */
Test(xml, documents_with_a_dtd_are_refused)
{
    assert_refused("<!DOCTYPE VM [<!ENTITY a \"x\">]><VM><N>&a;</N></VM>", "VM",
                   "unexpected XML document: a DTD");
    assert_refused("<!DOCTYPE VM><VM/>", "VM", "unexpected XML document: a DTD");
    assert_refused("<!DOCTYPE VM SYSTEM \"/etc/passwd\"><VM/>", "VM",
                   "unexpected XML document: a DTD");
}

Test(xml, billion_laughs_is_not_expanded)
{
    assert_not_expanded(billion_laughs);
}

Test(xml, quadratic_blowup_is_not_expanded)
{
    struct sbuf doc = SBUF_INIT;

    sbuf_adds(&doc, "<!DOCTYPE VM [<!ENTITY a \"");
    for (int i = 0; i < 50000; i++)
        sbuf_addch(&doc, 'a');
    sbuf_adds(&doc, "\">]><VM><NAME>");
    for (int i = 0; i < 20000; i++)
        sbuf_adds(&doc, "&a;");
    sbuf_adds(&doc, "</NAME></VM>");
    assert_not_expanded(doc.buf);
    sbuf_release(&doc);
}

/* ---- writing ---- */

Test(xml, escape)
{
    static const char *const t[][2] = {
        { "", "" },
        { "plain", "plain" },
        { "<a href=\"x\">&'</a>", "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;" },
        { "&amp;", "&amp;amp;" },
        { "]]>", "]]&gt;" },
        { "\xc3\xa9t\xc3\xa9 \xe2\x9c\x93", "\xc3\xa9t\xc3\xa9 \xe2\x9c\x93" },
        { "a\nb\tc", "a\nb\tc" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
        struct sbuf sb = SBUF_INIT;

        sbuf_adds(&sb, "[");
        xml_escape(&sb, t[i][0]);
        cr_assert_str_eq(sb.buf + 1, t[i][1], "escape('%s')", t[i][0]);
        cr_assert_eq(sb.buf[0], '[', "appends");
        sbuf_release(&sb);
    }
}

Test(xml, template_output_is_exact)
{
    struct xml_tmpl t;
    char *s;

    xml_tmpl_begin(&t, "TEMPLATE");
    xml_tmpl_add(&t, "NAME", "disk <0> & \"friends\"");
    xml_tmpl_addf(&t, "SIZE", "%d", 64);
    xml_tmpl_add(&t, "SOURCE", "/var/lib/one//datastores/107/x");
    xml_tmpl_add(&t, "EMPTY", "");
    s = xml_tmpl_end(&t);
    cr_assert_str_eq(s, "<TEMPLATE><NAME>disk &lt;0&gt; &amp; &quot;friends&quot;</NAME>"
                        "<SIZE>64</SIZE><SOURCE>/var/lib/one//datastores/107/x</SOURCE>"
                        "<EMPTY></EMPTY></TEMPLATE>");
    free(s);
}

Test(xml, template_roundtrips_through_the_parser)
{
    static const char *const values[] = {
        "a<b&c>d",           "'single' \"double\"", "]]>", "$(touch /tmp/x); `id`",
        "\xc3\xa9t\xc3\xa9", "multi\nline\ttext",   "",
    };
    struct xml_tmpl t;
    struct xml *x;
    char *s;

    xml_tmpl_begin(&t, "TEMPLATE");
    for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
        char name[16];

        snprintf(name, sizeof(name), "V%zu", i);
        xml_tmpl_add(&t, name, values[i]);
    }
    s = xml_tmpl_end(&t);
    x = xml_doc_parse(s, strlen(s), "TEMPLATE");
    cr_assert_not_null(x, "%s: %s", s, fail_reason());
    for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
        char *v = xml_get(x, "/TEMPLATE/V%zu", i);

        cr_assert_str_eq(v, values[i], "value %zu", i);
        free(v);
    }
    cr_assert_eq(xml_count(x, "/TEMPLATE/*"), (int)ARRAY_SIZE(values));
    xml_free(x);
    free(s);
}

Test(xml, empty_template)
{
    struct xml_tmpl t;
    char *s;

    xml_tmpl_begin(&t, "TEMPLATE");
    s = xml_tmpl_end(&t);
    cr_assert_str_eq(s, "<TEMPLATE></TEMPLATE>");
    free(s);
}

/* ---- editing (harness helpers) ---- */

Test(xml, set_remove_append_dump)
{
    static const char doc[] = "<VM><ID>1</ID><TEMPLATE><DISK><DISK_ID>0</DISK_ID></DISK>"
                              "</TEMPLATE></VM>";
    static const char child_doc[] = "<DISK><DISK_ID>1</DISK_ID><SOURCE>/a</SOURCE></DISK>";
    struct xml *x = xml_doc_parse(doc, sizeof(doc) - 1, "VM");
    struct xml *child = xml_doc_parse(child_doc, sizeof(child_doc) - 1, "DISK");
    char *s;

    cr_assert_not_null(x);
    cr_assert_not_null(child);
    cr_assert_eq(xml_set(x, "2", "/VM/ID"), 1);
    assert_get(x, "2", "/VM/ID");
    cr_assert_eq(xml_set(x, "a<b&c", "/VM/NAME"), 1, "created under its parent");
    assert_get(x, "a<b&c", "/VM/NAME");
    cr_assert_eq(xml_append(x, child, "/VM/TEMPLATE"), 1);
    cr_assert_eq(xml_count(x, "/VM/TEMPLATE/DISK"), 2);
    assert_get(x, "/a", "/VM/TEMPLATE/DISK[DISK_ID=1]/SOURCE");
    cr_assert_eq(xml_set(x, "sdz", "/VM/TEMPLATE/DISK/TARGET"), 1,
                 "creates under the first parent only");
    cr_assert_eq(xml_set(x, "X", "/VM/NOPE/DEEP"), -1, "no parent");
    fail_reset();
    cr_assert_eq(xml_remove(x, "/VM/TEMPLATE/DISK"), 2);
    cr_assert_eq(xml_count(x, "/VM/TEMPLATE/DISK"), 0);
    cr_assert_eq(xml_remove(x, "/VM/TEMPLATE/DISK"), 0);
    cr_assert_eq(xml_append(x, child, "/VM/NOPE"), -1);
    s = xml_dump(x);
    cr_assert_str_eq(s, "<VM><ID>2</ID><TEMPLATE/><NAME>a&lt;b&amp;c</NAME></VM>");
    free(s);
    xml_free(child);
    xml_free(x);
}

/* Forked from Criterion's threaded worker: exit without the sanitizers'
 * exit-time leak check (registered last, runs first). */
static void quick_exit_child(int status, void *arg)
{
    (void)arg;
    fflush(NULL);
    _exit(status);
}

/* A broken XPath expression is a programming error: the action dies with
 * one plain line, and libxml2 itself prints nothing. */
Test(xml, invalid_xpath_dies_with_one_line)
{
    int fds[2], st;
    pid_t pid;
    struct sbuf err = SBUF_INIT;

    cr_assert_eq(pipe(fds), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct xml *x = xml_doc_parse("<VM/>", 5, "VM");

        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        log_setup("clone", 3);
        on_exit(quick_exit_child, NULL);
        free(xml_get(x, "/VM/DISK[DISK_ID=%d", 1));
        _exit(42); /* not reached */
    }
    close(fds[1]);
    cr_assert_eq(sbuf_read_fd(&err, fds[0], 0), 0);
    close(fds[0]);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d", st);
    cr_assert_str_eq(err.buf, "internal error: invalid XPath expression /VM/DISK[DISK_ID=1\n");
    sbuf_release(&err);
}

Test(xml, free_null)
{
    xml_free(NULL);
}
