/*
 * test_standin.c - the oned stand-in (tests/harness/oned-standin), driven
 * through the real client, common/one.h, the way the drivers use it.
 *
 * Each test starts its own server on a fresh state directory seeded with
 * documents a real oned 7.5.80 returned (tests/fixtures/standin/, copied
 * from shared/oned-captures/xmlrpc) and inspects the state files with
 * standin-ctl. Raw HTTP requests cover what one.h cannot send (wrong types,
 * unknown methods) and compare the answers with oned's captured bytes.
 * Documents are checked with standin-ctl, string searches and xmllint.
 */
#include "testlib.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "one.h"
#include "run.h"

#define ADMIN_PW "admin-Pa55"
#define USER_PW "labuserpass"

static char *dir;      /* the state directory */
static char *build;    /* $(O) */
static char *fixtures; /* tests/fixtures */
static pid_t server = -1;
static int port;
static char *endpoint;

/* ---- files and commands ---- */

static char *path_in(const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

static char *read_text(const char *path)
{
    struct sbuf sb = SBUF_INIT;

    cr_assert_eq(sbuf_read_file(&sb, path, 0), 0, "cannot read %s: %s", path, strerror(errno));
    return sbuf_detach(&sb);
}

/* $(O)/tests/test_standin -> $(O) and the source tree's tests/fixtures. */
static void find_paths(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    cr_assert_gt(n, 0);
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    build = xasprintf("%s/..", exe);
    fixtures = xasprintf("%s/../../tests/fixtures", exe);
    if (access(fixtures, R_OK) != 0) {
        free(fixtures);
        fixtures = xstrdup("tests/fixtures");
    }
}

/* Runs argv; its stdout, trailing newline removed. Asserts exit 0 unless
 * `may_fail`, then returns NULL on failure. */
static char *run_out(bool may_fail, const char *const *argv)
{
    struct cmd c = CMD_INIT;
    char *out = NULL;
    int rc;

    strvec_pushv(&c.args, argv);
    c.timeout_s = 30;
    rc = cmd_run(&c);
    if (!may_fail)
        cr_assert_eq(rc, 0, "%s", fail_reason());
    if (rc == 0) {
        sbuf_rtrim(&c.out);
        out = sbuf_detach(&c.out);
    }
    fail_reset();
    cmd_release(&c);
    return out;
}

static char *ctl_bin(void)
{
    return xasprintf("%s/harness/standin-ctl", build);
}

/* standin-ctl DIR get KIND ID [XPATH]: the value, or NULL when none. */
static char *get(const char *kind, int id, const char *xpath)
{
    char *bin = ctl_bin();
    char *ids = xasprintf("%d", id);
    const char *argv[] = { bin, dir, "get", kind, ids, xpath, NULL };
    char *v = run_out(true, argv);

    free(ids);
    free(bin);
    return v;
}

static void expect_get(const char *kind, int id, const char *xpath, const char *want)
{
    char *v = get(kind, id, xpath);

    cr_expect_str_eq(v ? v : "(nothing)", want, "%s %d %s", kind, id, xpath);
    free(v);
}

/* Asserts that XPATH selects nothing. */
static void expect_none(const char *kind, int id, const char *xpath)
{
    char *v = get(kind, id, xpath);

    cr_expect_null(v, "%s %d %s: %s", kind, id, xpath ? xpath : "", v);
    free(v);
}

static void ctl(const char *a, const char *b, const char *c, const char *d, const char *e)
{
    char *bin = ctl_bin();
    const char *argv[] = { bin, dir, a, b, c, d, e, NULL };

    free(run_out(false, argv));
    free(bin);
}

static void put(const char *kind, const char *fixture, const char *subst)
{
    char *file = xasprintf("%s/standin/%s", fixtures, fixture);

    ctl("put", kind, file, subst ? "--subst" : NULL, subst);
    free(file);
}

/* ---- the server ---- */

static void start_server(void)
{
    char *bin = xasprintf("%s/harness/oned-standin", build);
    char *portfile = path_in("port");
    pid_t parent = getpid();
    char *text;

    server = fork();
    cr_assert_geq(server, 0);
    if (server == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        execl(bin, bin, "--state", dir, "--port", "0", "--portfile", portfile, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && access(portfile, R_OK) != 0; i++)
        usleep(50 * 1000);
    text = read_text(portfile);
    port = (int)strtol(text, NULL, 10);
    cr_assert_gt(port, 0);
    endpoint = xasprintf("http://127.0.0.1:%d/RPC2", port);
    free(text);
    free(portfile);
    free(bin);
}

static char *auth_file(const char *name, const char *session)
{
    char *p = path_in(name);

    test_write_file(p, session);
    return p;
}

static struct one_client *client_as(const char *session, unsigned timeout_s)
{
    char *auth = auth_file("auth", session);
    struct one_opts o = { .endpoint = endpoint, .auth_file = auth, .timeout_s = timeout_s };
    struct one_client *c = one_open(&o);

    cr_assert_not_null(c, "%s", fail_reason());
    free(auth);
    return c;
}

static struct one_client *admin(void)
{
    return client_as("oneadmin:" ADMIN_PW "\n", 6);
}

static struct one_client *labuser(void)
{
    return client_as("labuser:" USER_PW "\n", 6);
}

/* VM 6 powered off (disk 0 OS image 8 with snapshot 0, disk 1 persistent
 * image 9, disk 2 volatile), datastores 104 (system) and 105 (image), user 0. */
static void setup(void)
{
    find_paths();
    dir = test_tmpdir();
    unsetenv("ONE_XMLRPC");
    unsetenv("ONE_AUTH");
    {
        char *users = path_in("users");

        test_write_file(users, "oneadmin:" ADMIN_PW ":0:0\nlabuser:" USER_PW ":2:1\n");
        free(users);
    }
    put("vm", "vm.info.poweroff.inner.xml", NULL);
    put("image", "image.info.ready.inner.xml", NULL);
    put("image", "image.info.persistent-used.inner.xml", NULL);
    put("datastore", "datastore.info.image.inner.xml", NULL);
    put("datastore", "datastore.info.system.inner.xml", NULL);
    put("user", "user.info.self.inner.xml", NULL);
    start_server();
    fail_reset();
}

static void teardown(void)
{
    if (server > 0) {
        kill(server, SIGTERM);
        waitpid(server, NULL, 0);
        server = -1;
    }
    free(endpoint);
    free(dir);
    free(build);
    free(fixtures);
}

TestSuite(standin, .init = setup, .fini = teardown, .timeout = 90);

/* ---- raw HTTP, for what one.h cannot send ---- */

static char *raw_post(const char *body)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sbuf resp = SBUF_INIT;
    char *req = xasprintf("POST /RPC2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
                          "Content-Length: %zu\r\n\r\n%s",
                          strlen(body), body);
    const char *xml;
    char *out;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    cr_assert_eq(sbuf_read_fd(&resp, fd, 0), 0);
    close(fd);
    free(req);
    xml = strstr(resp.buf, "<?xml");
    cr_assert_not_null(xml, "no XML in the answer: %s", resp.buf);
    out = xstrdup(xml);
    sbuf_release(&resp);
    return out;
}

/* A methodCall whose parameters (after the session) are `params` XML. */
static char *raw_call(const char *method, const char *session, const char *params)
{
    char *body = xasprintf("<?xml version='1.0'?>\n<methodCall>\n<methodName>%s</methodName>\n"
                           "<params>\n<param><value><string>%s</string></value></param>\n%s"
                           "</params>\n</methodCall>\n",
                           method, session, params);
    char *resp = raw_post(body);

    free(body);
    return resp;
}

/* The text without CR, so that xmlrpc-c's CRLF and the capture's LF match. */
static char *no_cr(const char *s)
{
    struct sbuf sb = SBUF_INIT;

    for (; *s; s++)
        if (*s != '\r')
            sbuf_addch(&sb, *s);
    sbuf_rtrim(&sb);
    return sbuf_detach(&sb);
}

static void expect_capture(const char *answer, const char *capture)
{
    char *file = xasprintf("%s/standin/%s", fixtures, capture);
    char *want = read_text(file);
    char *a = no_cr(answer), *w = no_cr(want);

    cr_expect_str_eq(a, w, "answer differs from oned's %s", capture);
    free(a);
    free(w);
    free(want);
    free(file);
}

/* ---- XSD ---- */

/* Validates `doc` against tests/fixtures/xsd/<xsd>, on a copy whose root
 * element carries the schemas' namespace (see tests/fixtures/xsd/README.md). */
static void expect_valid(const char *doc, const char *root, const char *xsd)
{
    char *open_tag = xasprintf("<%s>", root);
    const char *p = strstr(doc, open_tag);
    char *copy, *file = path_in("validate.xml"), *schema;
    struct cmd c = CMD_INIT;

    cr_assert_not_null(p, "no <%s> in %s", root, doc);
    copy = xasprintf("%.*s<%s xmlns=\"http://opennebula.org/XMLSchema\">%s", (int)(p - doc), doc,
                     root, p + strlen(open_tag));
    test_write_file(file, copy);
    schema = xasprintf("%s/xsd/%s", fixtures, xsd);
    strvec_pushl(&c.args, "xmllint", "--noout", "--schema", schema, file, NULL);
    c.timeout_s = 30;
    cr_expect_eq(cmd_run(&c), 0, "%s does not validate against %s: %s", root, xsd, fail_reason());
    fail_reset();
    cmd_release(&c);
    free(schema);
    free(copy);
    free(file);
    free(open_tag);
}

/* Removes the first <name>...</name>. */
static char *without(const char *doc, const char *name)
{
    char *open_tag = xasprintf("<%s>", name), *close_tag = xasprintf("</%s>", name);
    const char *a = strstr(doc, open_tag), *b = a ? strstr(a, close_tag) : NULL;
    char *out =
        a && b ? xasprintf("%.*s%s", (int)(a - doc), doc, b + strlen(close_tag)) : xstrdup(doc);

    free(open_tag);
    free(close_tag);
    return out;
}

/* Real oned's VMs carry TEMPLATE/CREATED_BY, which vm.xsd does not allow
 * (tests/fixtures/xsd/README.md): the stand-in sends it as oned does, and
 * only the copy that is validated goes without. */
static void expect_valid_vm(const char *doc)
{
    char *v = without(doc, "CREATED_BY");

    expect_valid(v, "VM", "vm.xsd");
    free(v);
}

/* ---- methods, through one.h ---- */

Test(standin, vm_info_returns_the_stored_document)
{
    struct one_client *c = admin();
    char *xml = NULL;
    char *file = xasprintf("%s/standin/vm.info.poweroff.inner.xml", fixtures);
    char *want = read_text(file);

    cr_assert_eq(one_vm_info(c, 6, &xml), 0, "%s", fail_reason());
    want[strcspn(want, "\n")] = '\0';
    cr_expect_str_eq(xml, want, "byte for byte as oned sent it");
    expect_valid_vm(xml);
    free(want);
    free(file);
    free(xml);
    one_close(c);
}

Test(standin, info_failures)
{
    struct one_client *c = admin(), *u = labuser();
    char *xml = NULL;

    cr_expect_eq(one_vm_info(c, 999999, &xml), -1);
    cr_expect_eq(one_last_code(c), ONE_NO_EXISTS);
    cr_expect(strstr(fail_reason(), "[one.vm.info] Error getting virtual machine [999999]."), "%s",
              fail_reason());
    fail_reset();
    cr_expect_eq(one_image_info(c, 999999, &xml), -1);
    cr_expect(strstr(fail_reason(), "[one.image.info] Error getting image [999999]."));
    fail_reset();
    cr_expect_eq(one_datastore_info(c, 7, &xml), -1);
    cr_expect(strstr(fail_reason(), "[one.datastore.info] Error getting datastore [7]."));
    fail_reset();
    cr_expect_eq(one_vm_info(u, 6, &xml), -1);
    cr_expect_eq(one_last_code(u), ONE_AUTHORIZATION);
    cr_expect(
        strstr(fail_reason(), "[one.vm.info] User [2] : Not authorized to perform USE VM [6]."));
    fail_reset();
    cr_expect_eq(one_image_info(u, 9, &xml), -1);
    cr_expect(strstr(fail_reason(),
                     "[one.image.info] User [2] : Not authorized to perform USE IMAGE [9]."));
    fail_reset();
    one_close(c);
    one_close(u);
}

Test(standin, failure_arrays_are_shaped_as_oneds)
{
    char *a;

    a = raw_call("one.vm.info", "oneadmin:wrongpassword",
                 "<param><value><i4>6</i4></value></param>"
                 "<param><value><boolean>0</boolean></value></param>");
    expect_capture(a, "error.wrong-session.response.xml");
    free(a);
    a = raw_call("one.vm.info", "labuser:" USER_PW, "<param><value><i4>6</i4></value></param>");
    expect_capture(a, "error.permission-denied.response.xml");
    free(a);
    a = raw_call("one.vm.info", "oneadmin:" ADMIN_PW,
                 "<param><value><i4>999999</i4></value></param>");
    expect_capture(a, "error.unknown-id.response.xml");
    free(a);
    a = raw_call("one.image.info", "labuser:" USER_PW, "<param><value><i4>9</i4></value></param>");
    expect_capture(a, "error.permission-denied-image.response.xml");
    free(a);
}

Test(standin, wrong_session)
{
    struct one_client *c = client_as("oneadmin:nope\n", 6);
    char *xml = NULL;

    cr_expect_eq(one_vm_info(c, 6, &xml), -1);
    cr_expect_eq(one_last_code(c), ONE_AUTHENTICATION);
    cr_expect(
        strstr(fail_reason(), "[one.vm.info] User couldn't be authenticated, aborting call."));
    fail_reset();
    one_close(c);
}

Test(standin, faults_like_xmlrpc_c)
{
    char *a;

    a = raw_call("one.vm.info", "oneadmin:" ADMIN_PW,
                 "<param><value><string>6</string></value></param>");
    cr_expect(strstr(a, "<fault>") && strstr(a, "<i4>-501</i4>") &&
                  strstr(a, "Parameter that is supposed to be integer is not"),
              "%s", a);
    free(a);
    a = raw_call("one.vm.disksaveas", "oneadmin:" ADMIN_PW,
                 "<param><value><i4>6</i4></value></param>"
                 "<param><value><i4>0</i4></value></param>"
                 "<param><value><string>x</string></value></param>"
                 "<param><value><string></string></value></param>");
    cr_expect(strstr(a, "<i4>-501</i4>") && strstr(a, "Not enough parameters"), "%s", a);
    free(a);
    a = raw_call("one.image.delete", "oneadmin:" ADMIN_PW,
                 "<param><value><i4>8</i4></value></param>"
                 "<param><value><i4>1</i4></value></param>");
    cr_expect(strstr(a, "Parameter that is supposed to be boolean is not"), "%s", a);
    free(a);
    a = raw_call("one.vm.nosuch", "oneadmin:" ADMIN_PW, "");
    cr_expect(strstr(a, "<i4>-506</i4>") && strstr(a, "Method 'one.vm.nosuch' not defined"), "%s",
              a);
    free(a);
    /* the session is checked before the parameters, as in oned */
    a = raw_call("one.vm.info", "oneadmin:bad", "<param><value><string>6</string></value></param>");
    cr_expect(strstr(a, "<i4>256</i4>") && !strstr(a, "<fault>"), "%s", a);
    free(a);
    expect_get("image", 8, "/IMAGE/ID", "8");
}

Test(standin, vm_update_merge_then_replace)
{
    struct one_client *c = admin(), *u = labuser();
    char *xml = NULL;

    /* append 1 merges into USER_TEMPLATE (the capture vm.update.append) */
    cr_assert_eq(one_vm_update(c, 6, "LAB_NOTE=\"appended by one.vm.update\"", 1), 0, "%s",
                 fail_reason());
    expect_get("vm", 6, "/VM/USER_TEMPLATE/LAB_NOTE", "appended by one.vm.update");
    {
        char *err = get("vm", 6, "/VM/USER_TEMPLATE/ERROR");

        cr_expect(err && strstr(err, "cpds: Live operation"));
        free(err);
    }
    cr_assert_eq(one_vm_info(c, 6, &xml), 0);
    cr_expect(strstr(xml, "<USER_TEMPLATE><ERROR><![CDATA[Mon Nov 23 18:12:14 2026: Error "
                          "executing image transfer script: cpds: Live operation not supported "
                          "on dummy]]></ERROR><LAB_NOTE><![CDATA[appended by one.vm.update]]>"
                          "</LAB_NOTE></USER_TEMPLATE>"),
              "as the capture vm.info.after-update: %s", xml);
    expect_valid_vm(xml);
    free(xml);
    /* append 0 (the default) replaces the whole USER_TEMPLATE: trap 33 */
    cr_assert_eq(one_vm_update(c, 6,
                               "# a comment\nQ = \"say \\\"hi\\\"\"\nV = [ B = \"2\",\n  a = 1 ]\n"
                               "EMPTY =\nML=\"line1\nline2\"",
                               0),
                 0, "%s", fail_reason());
    expect_none("vm", 6, "/VM/USER_TEMPLATE/LAB_NOTE");
    expect_none("vm", 6, "/VM/USER_TEMPLATE/ERROR");
    expect_get("vm", 6, "/VM/USER_TEMPLATE/Q", "say \"hi\"");
    expect_get("vm", 6, "/VM/USER_TEMPLATE/V/A", "1");
    expect_get("vm", 6, "name(/VM/USER_TEMPLATE/V/*[1])", "A");
    expect_get("vm", 6, "/VM/USER_TEMPLATE/EMPTY", "");
    expect_get("vm", 6, "/VM/USER_TEMPLATE/ML", "line1\nline2");
    /* the XML form, merged */
    cr_assert_eq(one_vm_update(c, 6, "<TEMPLATE><X>1</X><V2><K>v</K></V2></TEMPLATE>", 1), 0);
    expect_get("vm", 6, "/VM/USER_TEMPLATE/X", "1");
    expect_get("vm", 6, "/VM/USER_TEMPLATE/V2/K", "v");
    expect_get("vm", 6, "/VM/USER_TEMPLATE/Q", "say \"hi\"");
    /* failures */
    cr_expect_eq(one_vm_update(c, 6, "A=1", 2), -1);
    cr_expect_eq(one_last_code(c), 0x1000);
    cr_expect(strstr(fail_reason(), "[one.vm.update] Wrong update type"));
    fail_reset();
    cr_expect_eq(one_vm_update(c, 6, "A = [ B = 1", 1), -1);
    cr_expect_eq(one_last_code(c), ONE_ACTION);
    cr_expect(strstr(fail_reason(), "[one.vm.update] Parse error: syntax error"), "%s",
              fail_reason());
    fail_reset();
    cr_expect_eq(one_vm_update(u, 6, "A=1", 1), -1);
    cr_expect(strstr(fail_reason(), "Not authorized to perform MANAGE VM [6]."));
    fail_reset();
    cr_expect_eq(one_vm_update(c, 77, "A=1", 1), -1);
    cr_expect_eq(one_last_code(c), ONE_NO_EXISTS);
    fail_reset();
    one_close(c);
    one_close(u);
}

Test(standin, disksaveas_allocates_a_locked_image)
{
    struct one_client *c = admin();
    char *xml = NULL;
    int id = -1;

    cr_assert_eq(one_vm_disksaveas(c, 6, 0, "xr-saved", "", -1, &id), 0, "%s", fail_reason());
    cr_expect_eq(id, 10, "above every image id");
    expect_get("image", id, "/IMAGE/STATE", "4");
    expect_get("image", id, "/IMAGE/FORMAT", "save_as");
    expect_get("image", id, "/IMAGE/SOURCE", "");
    expect_get("image", id, "/IMAGE/DATASTORE_ID", "105");
    expect_get("image", id, "/IMAGE/DATASTORE", "lab-qcow2c-180947-img");
    expect_get("image", id, "/IMAGE/UNAME", "oneadmin");
    expect_get("image", id, "/IMAGE/SIZE", "64");
    expect_get("image", id, "/IMAGE/TYPE", "0");
    expect_get("image", id, "/IMAGE/TEMPLATE/SAVED_IMAGE_ID", "8");
    expect_get("image", id, "/IMAGE/TEMPLATE/SAVED_DISK_ID", "0");
    expect_get("image", id, "/IMAGE/TEMPLATE/SAVED_VM_ID", "6");
    expect_get("image", id, "/IMAGE/TEMPLATE/SAVE_AS_HOT", "YES");
    expect_get("datastore", 105, "/DATASTORE/IMAGES/ID[last()]", "10");
    /* §3.1 step 1: POWEROFF -> ACTIVE/HOTPLUG_SAVEAS_POWEROFF */
    expect_get("vm", 6, "/VM/STATE", "3");
    expect_get("vm", 6, "/VM/LCM_STATE", "27");
    expect_get("vm", 6, "/VM/TEMPLATE/DISK[DISK_ID=0]/HOTPLUG_SAVE_AS_ACTIVE", "YES");
    expect_get("vm", 6, "/VM/TEMPLATE/DISK[DISK_ID=0]/HOTPLUG_SAVE_AS_SNAPSHOT_ID", "-1");
    cr_assert_eq(one_image_info(c, id, &xml), 0);
    expect_valid(xml, "IMAGE", "image.xsd");
    free(xml);
    cr_assert_eq(one_vm_info(c, 6, &xml), 0);
    expect_valid_vm(xml);
    free(xml);
    /* a second save-as while the first runs: the VM is no longer POWEROFF */
    cr_expect_eq(one_vm_disksaveas(c, 6, 1, "again", "", -1, &id), -1);
    cr_expect_eq(one_last_code(c), ONE_INTERNAL);
    cr_expect(strstr(fail_reason(), "[one.vm.disksaveas] VM has to be RUNNING, POWEROFF or "
                                    "SUSPENDED to save disks."));
    fail_reset();
    /* deleting the LOCKED target gives the VM its state back (§3.1) */
    cr_assert_eq(one_image_delete(c, 10, false), 0, "%s", fail_reason());
    expect_get("vm", 6, "/VM/STATE", "8");
    expect_get("vm", 6, "/VM/LCM_STATE", "0");
    expect_none("vm", 6, "/VM/TEMPLATE/DISK[DISK_ID=0]/HOTPLUG_SAVE_AS_ACTIVE");
    one_close(c);
}

Test(standin, disksaveas_by_the_owner_of_the_vm)
{
    struct one_client *u;
    int id = -1;

    put("vm", "vm.info.running.inner.xml",
        "<UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME>=<UID>2</UID><GID>1</GID>"
        "<UNAME>labuser</UNAME>");
    ctl("set", "image", "8", "/IMAGE/PERMISSIONS/OTHER_U", "1");
    u = labuser();
    cr_assert_eq(one_vm_disksaveas(u, 6, 0, "mine", "DATABLOCK", -1, &id), 0, "%s", fail_reason());
    expect_get("image", id, "/IMAGE/UID", "2");
    expect_get("image", id, "/IMAGE/UNAME", "labuser");
    expect_get("image", id, "/IMAGE/GID", "1");
    expect_get("image", id, "/IMAGE/GNAME", "users");
    expect_get("image", id, "/IMAGE/TYPE", "2");
    /* RUNNING -> HOTPLUG_SAVEAS */
    expect_get("vm", 6, "/VM/STATE", "3");
    expect_get("vm", 6, "/VM/LCM_STATE", "26");
    one_close(u);
}

Test(standin, disksaveas_refusals)
{
    struct one_client *c = admin(), *u = labuser();
    int id;

    cr_expect_eq(one_vm_disksaveas(c, 6, 9, "x", "", -1, &id), -1);
    cr_expect(strstr(fail_reason(), "[one.vm.disksaveas] Cannot use DISK. DISK does not exist."));
    fail_reset();
    cr_expect_eq(one_vm_disksaveas(c, 6, 2, "x", "", -1, &id), -1);
    cr_expect(strstr(fail_reason(), "Cannot use DISK. DISK does not have a valid IMAGE_ID."));
    fail_reset();
    cr_expect_eq(one_vm_disksaveas(c, 6, 0, "x", "", 5, &id), -1);
    cr_expect(strstr(fail_reason(), "Cannot use DISK. Snapshot does not exist."));
    fail_reset();
    cr_expect_eq(one_vm_disksaveas(c, 6, 0, "lab-qcow2c-180947-os", "", -1, &id), -1);
    cr_expect_eq(one_last_code(c), ONE_ALLOCATE);
    cr_expect(strstr(fail_reason(), "[one.vm.disksaveas] Error allocating a new image. NAME is "
                                    "already taken by IMAGE 8."),
              "%s", fail_reason());
    fail_reset();
    cr_expect_eq(one_vm_disksaveas(u, 6, 0, "x", "", -1, &id), -1);
    cr_expect_eq(one_last_code(u), ONE_AUTHORIZATION);
    cr_expect(strstr(fail_reason(), "User [2] : Not authorized to perform MANAGE VM [6]; Not "
                                    "authorized to perform USE IMAGE [8]."),
              "%s", fail_reason());
    fail_reset();
    cr_expect_eq(one_vm_disksaveas(c, 5, 0, "x", "", -1, &id), -1);
    cr_expect(strstr(fail_reason(), "Error getting virtual machine [5]."));
    fail_reset();
    /* nothing changed */
    expect_get("vm", 6, "/VM/LCM_STATE", "0");
    expect_none("image", 10, NULL);
    /* snapshot 0 of disk 0 exists */
    cr_assert_eq(one_vm_disksaveas(c, 6, 0, "from-snap", "", 0, &id), 0, "%s", fail_reason());
    expect_get("vm", 6, "/VM/TEMPLATE/DISK[DISK_ID=0]/HOTPLUG_SAVE_AS_SNAPSHOT_ID", "0");
    one_close(c);
    one_close(u);
}

Test(standin, image_allocate_with_source)
{
    struct one_client *c = admin(), *u = labuser();
    const char *tmpl = "NAME=\"xr-with-source\"\nTYPE=\"DATABLOCK\"\n"
                       "SOURCE=\"/var/lib/one/datastores/105/xr-external-source\"\n"
                       "FORMAT=\"qcow2\"\nSIZE=\"64\"";
    char *xml = NULL, *a, *want;
    int id = -1;

    cr_assert_eq(one_image_allocate(c, tmpl, 105, false, &id), 0, "%s", fail_reason());
    expect_get("image", id, "/IMAGE/STATE", "1");
    expect_get("image", id, "/IMAGE/FORMAT", "qcow2");
    expect_get("image", id, "/IMAGE/SIZE", "64");
    expect_get("image", id, "/IMAGE/PERSISTENT", "0");
    cr_assert_eq(one_image_info(c, id, &xml), 0);
    /* the capture image.info.allocated-with-source, but for ID and times */
    want = xasprintf("<TEMPLATE><DEV_PREFIX><![CDATA[sd]]></DEV_PREFIX></TEMPLATE><SNAPSHOTS>"
                     "<ALLOW_ORPHANS><![CDATA[NO]]></ALLOW_ORPHANS><CURRENT_BASE><![CDATA[-1]]>"
                     "</CURRENT_BASE><NEXT_SNAPSHOT><![CDATA[0]]></NEXT_SNAPSHOT></SNAPSHOTS>"
                     "<BACKUP_INCREMENTS></BACKUP_INCREMENTS><BACKUP_DISK_IDS>"
                     "</BACKUP_DISK_IDS></IMAGE>");
    cr_expect(ends_with(xml, want), "%s", xml);
    cr_expect(strstr(xml, "<SOURCE><![CDATA[/var/lib/one/datastores/105/xr-external-source]]>"
                          "</SOURCE><PATH><![CDATA[]]></PATH><FORMAT><![CDATA[qcow2]]></FORMAT>"
                          "<FS><![CDATA[]]></FS><SIZE>64</SIZE><STATE>1</STATE>"));
    expect_valid(xml, "IMAGE", "image.xsd");
    free(want);
    free(xml);
    /* the same NAME again: image.allocate.name-clash */
    a = raw_call("one.image.allocate", "oneadmin:" ADMIN_PW,
                 "<param><value><string>NAME=\"xr-with-source\"\nTYPE=\"DATABLOCK\"\n"
                 "SOURCE=\"/var/lib/one/datastores/105/xr-external-source\"\nFORMAT=\"qcow2\"\n"
                 "SIZE=\"64\"</string></value></param><param><value><i4>105</i4></value></param>"
                 "<param><value><boolean>0</boolean></value></param>");
    cr_expect(strstr(a, "NAME is already taken by IMAGE 10.</string>") &&
                  strstr(a, "<i4>16384</i4>"),
              "%s", a);
    free(a);
    /* SOURCE from a plain user: image.allocate.source.user */
    a = raw_call("one.image.allocate", "labuser:" USER_PW,
                 "<param><value><string>NAME=\"xr-user-source\"\nTYPE=\"DATABLOCK\"\n"
                 "SOURCE=\"/var/lib/one/datastores/105/xr-external-source\"\nFORMAT=\"qcow2\"\n"
                 "SIZE=\"64\"</string></value></param><param><value><i4>105</i4></value></param>"
                 "<param><value><boolean>0</boolean></value></param>");
    expect_capture(a, "image.allocate.source.user.response.xml");
    free(a);
    cr_expect_eq(one_image_allocate(u, tmpl, 105, false, &id), -1);
    fail_reset();
    one_close(c);
    one_close(u);
}

Test(standin, image_allocate_refusals)
{
    struct one_client *c = admin();
    int id;

    cr_expect_eq(
        one_image_allocate(c, "NAME=a\nSOURCE=/x\nFORMAT=qcow2\nSIZE=big", 105, false, &id), -1);
    cr_expect_eq(one_last_code(c), ONE_INTERNAL);
    cr_expect(strstr(fail_reason(), "[one.image.allocate] Cannot parse image SIZE: Wrong number "
                                    "or missing SIZE attribute."),
              "%s", fail_reason());
    fail_reset();
    cr_expect_eq(one_image_allocate(c, "NAME=a\nSOURCE=/x\nSIZE=1", 105, false, &id), -1);
    cr_expect(
        strstr(fail_reason(), "Error allocating a new image. SOURCE needs FORMAT to be set."));
    fail_reset();
    cr_expect_eq(one_image_allocate(c, "NAME=a\nSIZE=1", 104, false, &id), -1);
    cr_expect(strstr(fail_reason(), "New images can only be allocated in a files or image "
                                    "datastore."));
    fail_reset();
    cr_expect_eq(one_image_allocate(c, "NAME=a\nSIZE=1", 99, false, &id), -1);
    cr_expect(strstr(fail_reason(), "Error getting datastore [99]."));
    fail_reset();
    cr_expect_eq(one_image_allocate(c, "SIZE=1", 105, false, &id), -1);
    cr_expect(strstr(fail_reason(), "Invalid NAME, it cannot be empty"));
    fail_reset();
    cr_expect_eq(one_image_allocate(c, "NAME=a\nSIZE=100000000", 105, false, &id), -1);
    cr_expect(strstr(fail_reason(), "Not enough space in datastore"));
    fail_reset();
    /* an empty datablock in XML form: LOCKED until mkfs, FORMAT from the DS */
    cr_assert_eq(one_image_allocate(c,
                                    "<IMAGE><NAME>blank</NAME><TYPE>DATABLOCK</TYPE>"
                                    "<SIZE>100000000</SIZE></IMAGE>",
                                    105, true, &id),
                 0, "%s", fail_reason());
    expect_get("image", id, "/IMAGE/STATE", "4");
    expect_get("image", id, "/IMAGE/FORMAT", "qcow2");
    expect_get("image", id, "/IMAGE/TEMPLATE/DRIVER", "qcow2");
    one_close(c);
}

Test(standin, image_update_chown_delete)
{
    struct one_client *c = admin(), *u = labuser();
    char *xml = NULL;

    cr_assert_eq(one_image_update(c, 8, "NOTE=one", 1), 0, "%s", fail_reason());
    expect_get("image", 8, "/IMAGE/TEMPLATE/NOTE", "one");
    expect_get("image", 8, "/IMAGE/TEMPLATE/DEV_PREFIX", "sd");
    cr_assert_eq(one_image_update(c, 8, "OTHER=two", 0), 0);
    expect_none("image", 8, "/IMAGE/TEMPLATE/NOTE");
    expect_none("image", 8, "/IMAGE/TEMPLATE/DEV_PREFIX");
    /* chown: -1 keeps the group (image.chown / image.info.after-chown) */
    cr_assert_eq(one_image_chown(c, 8, 2, -1), 0, "%s", fail_reason());
    expect_get("image", 8, "/IMAGE/UID", "2");
    expect_get("image", 8, "/IMAGE/UNAME", "labuser");
    expect_get("image", 8, "/IMAGE/GID", "0");
    expect_get("image", 8, "/IMAGE/GNAME", "oneadmin");
    cr_assert_eq(one_image_info(u, 8, &xml), 0, "the new owner may use it: %s", fail_reason());
    free(xml);
    cr_expect_eq(one_image_chown(c, 8, 77, -1), -1);
    cr_expect(strstr(fail_reason(), "[one.image.chown] Error getting user [77]."));
    fail_reset();
    cr_expect_eq(one_image_chown(u, 9, 2, -1), -1);
    cr_expect_eq(one_last_code(u), ONE_AUTHORIZATION);
    fail_reset();
    /* delete: refused while VMs use it, then gone; files are not touched */
    cr_expect_eq(one_image_delete(c, 9, false), -1);
    cr_expect_eq(one_last_code(c), ONE_ACTION);
    cr_expect(strstr(fail_reason(), "[one.image.delete] Cannot delete image. There are 1 VMs "
                                    "using it."),
              "%s", fail_reason());
    fail_reset();
    ctl("set", "image", "8", "/IMAGE/STATE", "1");
    ctl("set", "image", "8", "/IMAGE/RUNNING_VMS", "0");
    cr_assert_eq(one_image_delete(c, 8, false), 0, "%s", fail_reason());
    expect_none("image", 8, NULL);
    cr_expect_eq(one_image_info(c, 8, &xml), -1);
    fail_reset();
    expect_get("datastore", 105, "string(count(/DATASTORE/IMAGES/ID[.=8]))", "0");
    cr_expect_eq(one_image_delete(c, 8, false), -1);
    cr_expect_eq(one_last_code(c), ONE_NO_EXISTS);
    fail_reset();
    one_close(c);
    one_close(u);
}

Test(standin, vm_allocate_and_pools)
{
    struct one_client *c = admin(), *u = labuser();
    char *xml = NULL;
    char *file = xasprintf("%s/standin/vmpool.info.inner.xml", fixtures);
    char *want = read_text(file);
    int id = -1, held = -1;

    /* VM 6 powered off, as when oned answered vmpool.info.inner.xml */
    want[strcspn(want, "\n")] = '\0';
    cr_assert_eq(one_vmpool_info(c, -2, -1, -1, -1, &xml), 0, "%s", fail_reason());
    cr_expect_str_eq(xml, want);
    expect_valid(xml, "VM_POOL", "vm_pool.xsd");
    free(xml);
    /* a disk from an image the user may not use: refused, nothing taken */
    cr_expect_eq(one_vm_allocate(u, "CPU=0.5\nMEMORY=64\nDISK=[IMAGE_ID=8]", false, &id), -1);
    cr_expect(strstr(fail_reason(), "Not authorized to perform USE IMAGE [8]."), "%s",
              fail_reason());
    cr_expect_eq(one_last_code(u), ONE_AUTHORIZATION);
    fail_reset();
    cr_expect_eq(one_vm_allocate(c, "CPU=1\nMEMORY=32\nDISK=[IMAGE_ID=99]", false, &id), -1);
    cr_expect(strstr(fail_reason(), "Image with ID: 99 does not exist"), "%s", fail_reason());
    fail_reset();
    expect_get("image", 8, "/IMAGE/RUNNING_VMS", "1"); /* VM 6's */
    cr_assert_eq(one_vm_allocate(u,
                                 "NAME=\"t1\"\nCPU=0.5\nMEMORY=64\nFOO=bar\n"
                                 "DISK=[SIZE=16,TYPE=fs]",
                                 false, &id),
                 0, "%s", fail_reason());
    cr_assert_eq(one_vm_allocate(c, "CPU=1\nMEMORY=32\nDISK=[IMAGE_ID=8]", true, &held), 0,
                 "%s", fail_reason());
    /* the image is taken as ImageManager::acquire_image takes it */
    expect_get("image", 8, "/IMAGE/RUNNING_VMS", "2");
    expect_get("image", 8, "/IMAGE/STATE", "2");
    {
        char *want_ids = xasprintf("6,%d", held);
        char *ids = get("image", 8, "concat(/IMAGE/VMS/ID[1], ',', /IMAGE/VMS/ID[2])");

        cr_expect_str_eq(ids ? ids : "(nothing)", want_ids);
        free(ids);
        free(want_ids);
    }
    expect_get("vm", held, "/VM/TEMPLATE/DISK/DISK_ID", "0");
    expect_get("vm", id, "/VM/STATE", "1");
    expect_get("vm", held, "/VM/STATE", "2");
    {
        char *name = xasprintf("one-%d", held);

        expect_get("vm", held, "/VM/NAME", name);
        free(name);
    }
    expect_get("vm", id, "/VM/UNAME", "labuser");
    expect_get("vm", id, "/VM/USER_TEMPLATE/FOO", "bar");
    expect_get("vm", held, "/VM/TEMPLATE/DISK/IMAGE_ID", "8");
    cr_assert_eq(one_vm_info(u, id, &xml), 0);
    expect_valid_vm(xml);
    free(xml);
    cr_expect_eq(one_vm_allocate(c, "CPU=1", false, &id), -1);
    cr_expect(strstr(fail_reason(), "[one.vm.allocate] Error allocating a new virtual machine. "
                                    "MEMORY attribute must be a positive integer value."));
    fail_reset();
    /* filters: the plain user sees its own VM only */
    cr_assert_eq(one_vmpool_info(u, -2, -1, -1, -1, &xml), 0);
    cr_expect(strstr(xml, "<NAME>t1</NAME>") && !strstr(xml, "<ID>6</ID>"), "%s", xml);
    free(xml);
    cr_assert_eq(one_vmpool_info(c, 2, -1, -1, -1, &xml), 0);
    cr_expect(strstr(xml, "<NAME>t1</NAME>") && !strstr(xml, "xr-vm"), "%s", xml);
    free(xml);
    cr_assert_eq(one_vmpool_info(c, -2, -1, -1, 8, &xml), 0);
    cr_expect(strstr(xml, "xr-vm") && !strstr(xml, "<NAME>t1</NAME>"), "%s", xml);
    free(xml);
    /* paging: offset 1, page size 2 (end -2), newest first: 7 and 6, not 8 */
    cr_assert_eq(one_vmpool_info(c, -2, 1, -2, -1, &xml), 0);
    cr_expect(strstr(xml, "<VM_POOL><VM><ID>7</ID>") && strstr(xml, "xr-vm") &&
                  !strstr(xml, "<ID>8</ID>"),
              "%s", xml);
    free(xml);
    /* an id range */
    cr_assert_eq(one_vmpool_info(c, -2, 8, 8, -1, &xml), 0);
    cr_expect(strstr(xml, "<VM_POOL><VM><ID>8</ID>") && !strstr(xml, "<ID>7</ID>"), "%s", xml);
    free(xml);
    cr_expect_eq(one_vmpool_info(c, -2, -1, -1, 99, &xml), -1);
    cr_expect(strstr(fail_reason(), "Incorrect state filter 99"));
    fail_reset();
    cr_assert_eq(one_imagepool_info(c, -2, -1, -1, &xml), 0);
    cr_expect(strstr(xml, "<IMAGE_POOL><IMAGE><ID>9</ID>"), "descending: %s", xml);
    free(xml);
    cr_assert_eq(one_imagepool_info(u, -2, -1, -1, &xml), 0);
    cr_expect_str_eq(xml, "<IMAGE_POOL></IMAGE_POOL>");
    free(xml);
    free(want);
    free(file);
    one_close(c);
    one_close(u);
}

Test(standin, datastore_and_user_info)
{
    struct one_client *c = admin(), *u = labuser();
    char *xml = NULL;

    cr_assert_eq(one_datastore_info(c, 105, &xml), 0);
    cr_expect(starts_with(xml, "<DATASTORE><ID>105</ID>"));
    expect_valid(xml, "DATASTORE", "datastore.xsd");
    free(xml);
    /* the users group may use the datastores (oned's default ACL) */
    cr_assert_eq(one_datastore_info(u, 104, &xml), 0, "%s", fail_reason());
    free(xml);
    cr_assert_eq(one_user_info_self(c, &xml), 0);
    cr_expect(starts_with(xml, "<USER><ID>0</ID><GID>0</GID><GROUPS><ID>0</ID></GROUPS>"));
    free(xml);
    cr_assert_eq(one_user_info_self(u, &xml), 0);
    cr_expect(starts_with(xml, "<USER><ID>2</ID><GID>1</GID><GROUPS><ID>1</ID></GROUPS>"
                               "<GNAME>users</GNAME><NAME>labuser</NAME>"),
              "%s", xml);
    free(xml);
    one_close(c);
    one_close(u);
}

/* ---- failure injection ---- */

Test(standin, injected_failures_count_down)
{
    struct one_client *c = admin();
    char *xml = NULL, *fail_file;

    ctl("fail", "one.vm.info", "2", "0x400", "Error getting virtual machine [6].");
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(one_vm_info(c, 6, &xml), -1);
        cr_expect_eq(one_last_code(c), ONE_NO_EXISTS);
        cr_expect(strstr(fail_reason(), "[one.vm.info] Error getting virtual machine [6]."));
        fail_reset();
    }
    cr_expect_eq(one_vm_info(c, 6, &xml), 0, "the third call is served");
    free(xml);
    {
        char *p = path_in("fail");

        fail_file = read_text(p);
        free(p);
    }
    cr_expect_str_eq(fail_file, "one.vm.info 0 0x400 Error getting virtual machine [6].\n");
    free(fail_file);
    ctl("fail", "one.image.info", "1", "fault", "injected fault");
    cr_expect_eq(one_image_info(c, 8, &xml), -1);
    cr_expect_eq(one_last_code(c), -1);
    cr_expect(strstr(fail_reason(), "injected fault (fault -500)"), "%s", fail_reason());
    fail_reset();
    one_close(c);
}

Test(standin, injected_hang_and_drop)
{
    struct one_client *c = client_as("oneadmin:" ADMIN_PW "\n", 3);
    char *xml = NULL;
    struct timespec t0, t1;
    double took;

    ctl("fail", "one.vm.info", "1", "hang", "");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_expect_eq(one_vm_info(c, 6, &xml), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_expect(took >= 2.9 && took < 15, "bounded by the client timeout: %.1fs", took);
    cr_expect(strstr(fail_reason(), "cannot reach oned"), "%s", fail_reason());
    fail_reset();
    /* the server still answers while the hung connection stays open */
    cr_expect_eq(one_image_info(c, 8, &xml), 0, "%s", fail_reason());
    free(xml);
    ctl("fail", "one.image.info", "1", "drop", "");
    cr_expect_eq(one_image_info(c, 8, &xml), -1);
    cr_expect(strstr(fail_reason(), "cannot reach oned"), "%s", fail_reason());
    fail_reset();
    one_close(c);
}

/* ---- calls.log ---- */

Test(standin, calls_log_records_calls_without_the_session)
{
    struct one_client *c = admin(), *u = labuser();
    char *xml = NULL, *log, *bin, *lines;

    cr_assert_eq(one_vm_update(c, 6, "LAB_NOTE=\"x y\"\nB=2", 1), 0);
    cr_expect_eq(one_vm_info(u, 6, &xml), -1);
    fail_reset();
    {
        char *p = path_in("calls.log");

        log = read_text(p);
        free(p);
    }
    cr_expect_null(strstr(log, ADMIN_PW), "no session in %s", log);
    cr_expect_null(strstr(log, USER_PW));
    cr_expect(strstr(log, "\toneadmin\tone.vm.update\t6 \"LAB_NOTE=\\\"x y\\\"\\nB=2\" 1\tok 6\n"),
              "%s", log);
    cr_expect(strstr(log, "\tlabuser\tone.vm.info\t6\terror 512 [one.vm.info] User [2] : Not "
                          "authorized to perform USE VM [6].\n"),
              "%s", log);
    bin = ctl_bin();
    {
        const char *argv[] = { bin, dir, "calls", "one.vm.info", NULL };

        lines = run_out(false, argv);
    }
    cr_expect(strstr(lines, "one.vm.info") && !strstr(lines, "one.vm.update"), "%s", lines);
    free(lines);
    free(bin);
    free(log);
    one_close(c);
    one_close(u);
}

/* ---- the tools for shell tests ---- */

Test(standin, large_requests_and_xml_parse_errors)
{
    struct one_client *c = admin();
    struct sbuf big = SBUF_INIT;
    char *v;

    /* over 1 KiB: curl asks "Expect: 100-continue" first */
    sbuf_adds(&big, "BIG=\"");
    for (int i = 0; i < 5000; i++)
        sbuf_addch(&big, (char)('a' + i % 26));
    sbuf_adds(&big, "\"");
    cr_assert_eq(one_vm_update(c, 6, big.buf, 1), 0, "%s", fail_reason());
    v = get("vm", 6, "string(string-length(/VM/USER_TEMPLATE/BIG))");
    cr_expect_str_eq(v, "5000");
    free(v);
    cr_expect_eq(one_vm_update(c, 6, "<TEMPLATE><A>", 1), -1);
    cr_expect(strstr(fail_reason(), "[one.vm.update] Parse error: XML Template malformed."), "%s",
              fail_reason());
    fail_reset();
    sbuf_release(&big);
    one_close(c);
}

Test(standin, standin_ctl_edits)
{
    char *bin = ctl_bin();
    const char *bad[] = { bin, dir, "get", "vm", "6", "/VM/NOPE", NULL };

    /* a direct child is edited in the text: the CDATA elsewhere stays */
    ctl("set", "vm", "6", "/VM/LCM_STATE", "26");
    expect_get("vm", 6, "/VM/LCM_STATE", "26");
    {
        char *doc = get("vm", 6, NULL);

        cr_expect(strstr(doc, "<DEPLOY_ID>node1:xr-vm:dummy</DEPLOY_ID>") &&
                      strstr(doc, "<![CDATA[qcow2c]]>"),
                  "%s", doc);
        free(doc);
    }
    /* deeper paths go through libxml2, and a missing last step is created */
    ctl("set", "vm", "6", "/VM/TEMPLATE/DISK[DISK_ID=1]/HOTPLUG_SAVE_AS_ACTIVE", "YES");
    expect_get("vm", 6, "/VM/TEMPLATE/DISK[DISK_ID=1]/HOTPLUG_SAVE_AS_ACTIVE", "YES");
    put("image", "image.info.ready.inner.xml", "<ID>8</ID>=<ID>42</ID>");
    expect_get("image", 42, "/IMAGE/NAME", "lab-qcow2c-180947-os");
    cr_expect_null(run_out(true, bad), "nothing selected: exit 1");
    free(bin);
}

Test(standin, standin_sh_start_and_stop)
{
    char *script = xasprintf("%s/../harness/standin.sh", fixtures);
    char *sdir = path_in("sh");
    char *buildenv = xasprintf("BUILD=%s", build);
    char *auth = xasprintf("%s/one_auth", sdir);
    struct cmd c = CMD_INIT;
    struct one_client *oc;
    struct one_opts o = { .auth_file = auth, .timeout_s = 6 };
    char *xml = NULL;
    const char *prefix = "export ONE_XMLRPC=http://127.0.0.1:";

    strvec_pushl(&c.args, "bash", script, "start", sdir, NULL);
    strvec_push(&c.env, buildenv);
    c.timeout_s = 30;
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    sbuf_rtrim(&c.out);
    cr_assert(starts_with(c.out.buf, prefix) && ends_with(c.out.buf, "/RPC2"), "%s", c.out.buf);
    o.endpoint = c.out.buf + strlen("export ONE_XMLRPC=");
    oc = one_open(&o);
    cr_assert_not_null(oc, "%s", fail_reason());
    cr_expect_eq(one_user_info_self(oc, &xml), 0, "%s", fail_reason());
    cr_expect(xml && strstr(xml, "<NAME>oneadmin</NAME>"));
    free(xml);
    one_close(oc);
    cmd_release(&c);
    c = (struct cmd)CMD_INIT;
    strvec_pushl(&c.args, "bash", script, "stop", sdir, NULL);
    c.timeout_s = 30;
    cr_expect_eq(cmd_run(&c), 0, "%s", fail_reason());
    {
        char *pidfile = xasprintf("%s/standin.pid", sdir);

        cr_expect_neq(access(pidfile, F_OK), 0, "the pid file is gone");
        free(pidfile);
    }
    cmd_release(&c);
    free(auth);
    free(buildenv);
    free(sdir);
    free(script);
}
