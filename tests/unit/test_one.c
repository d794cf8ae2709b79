/*
 * test_one.c - the oned XML-RPC client (one.c) against servers the tests
 * start on 127.0.0.1:
 *   - a scripted xmlrpc-c (Abyss) server that records every call it gets and
 *     answers as the test asks (success, oned failures, faults, garbage);
 *   - a raw HTTP server replaying the exact bytes a real oned sent
 *     (tests/fixtures/xmlrpc/, captured from oned 7.5.80);
 *   - a socket nobody listens on (oned down) and one that never answers.
 * Every server is a child process killed in the suite's fini, and it kills
 * itself when the test process dies (PR_SET_PDEATHSIG) or after a minute.
 */
#include "testlib.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>
#include <xmlrpc-c/server_abyss.h>

#include "one.h"

#define SECRET "s3cret-Pa55"
#define SESSION "oneadmin:" SECRET
/* '&' and '<' must survive the XML-RPC string encoding untouched. */
#define VM_DOC "<VM><ID>7</ID><NAME>a&amp;b &lt;x&gt;</NAME><STATE>3</STATE></VM>"

enum mode {
    M_OK,          /* [true, 42 | VM_DOC, 0] */
    M_OK_I8,       /* [true, <i8>42, <i8>0] */
    M_FAIL3,       /* *.info: [false, msg, NO_EXISTS]; others succeed */
    M_FAIL5,       /* [false, msg, ACTION, 7, <i8>-1] */
    M_FAULT,       /* <fault> -501 */
    M_FAULT_ECHO,  /* <fault> quoting the session it got */
    M_SHORT,       /* [true, 42] */
    M_LONG,        /* [true, 42, 0, 1] */
    M_FAIL4,       /* [false, msg, NO_EXISTS, 7] */
    M_NOT_ARRAY,   /* 42 */
    M_WRONG_TYPES, /* ids as strings, documents as ints */
};

static char *dir;
static char *record_path;
static pid_t server_pid = -1;
static enum mode server_mode;
static struct sbuf replay = SBUF_INIT; /* the bytes the replay server answers */

/* ---- environment ---- */

static char *path_in(const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

static char *write_in(const char *name, const char *content)
{
    char *p = path_in(name);

    test_write_file(p, content);
    return p;
}

/* Nothing from the machine running the tests may leak into a lookup. */
static void setup(void)
{
    dir = test_tmpdir();
    record_path = path_in("record");
    unsetenv("ONE_XMLRPC");
    unsetenv("ONE_AUTH");
    setenv("HOME", dir, 1);
    fail_reset();
}

static void teardown(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
    sbuf_release(&replay);
    free(record_path);
    free(dir);
}

TestSuite(one, .init = setup, .fini = teardown, .timeout = 60);

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_text(const char *path)
{
    struct sbuf sb = SBUF_INIT;

    cr_assert_eq(sbuf_read_file(&sb, path, 0), 0, "cannot read %s: %s", path, strerror(errno));
    return sbuf_detach(&sb);
}

/* tests/fixtures/xmlrpc of the source tree; this binary is $(O)/tests/test_one. */
static char *fixture(const char *name)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *p;

    if (n > 0) {
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0';
        p = xasprintf("%s/../../tests/fixtures/xmlrpc/%s", exe, name);
        if (access(p, R_OK) == 0)
            return p;
        free(p);
    }
    return xasprintf("tests/fixtures/xmlrpc/%s", name);
}

static char *fixture_text(const char *name)
{
    char *p = fixture(name);
    char *text = read_text(p);

    free(p);
    return text;
}

/* ---- sockets and server children ---- */

static int listen_local(int *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s", strerror(errno));
    /* Listening before the fork: clients may connect before the child runs. */
    cr_assert_eq(listen(fd, 16), 0, "listen: %s", strerror(errno));
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static char *endpoint_for(int port)
{
    return xasprintf("http://127.0.0.1:%d/RPC2", port);
}

/* Runs serve(fd) in a child that cannot outlive this test. Children only
 * ever leave with _exit(): Criterion's exit handlers belong to the parent. */
static void start_server(void (*serve)(int), int fd)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        alarm(60);
        serve(fd);
        _exit(0);
    }
    server_pid = pid;
    close(fd);
}

/* ---- the scripted xmlrpc-c server ---- */

static void describe_value(struct sbuf *out, xmlrpc_value *v)
{
    xmlrpc_env env;
    const char *s = NULL;
    xmlrpc_int64 i8 = 0;
    xmlrpc_bool b = 0;
    int i = 0;

    xmlrpc_env_init(&env);
    switch (xmlrpc_value_type(v)) {
    case XMLRPC_TYPE_STRING:
        xmlrpc_read_string(&env, v, &s);
        sbuf_adds(out, "s:");
        for (const char *p = s; p && *p; p++)
            if (*p == '\n')
                sbuf_adds(out, "\\n");
            else if (*p == '\r')
                sbuf_adds(out, "\\r");
            else
                sbuf_addch(out, *p);
        free((void *)s);
        break;
    case XMLRPC_TYPE_INT:
        xmlrpc_read_int(&env, v, &i);
        sbuf_addf(out, "i:%d", i);
        break;
    case XMLRPC_TYPE_I8:
        xmlrpc_read_i8(&env, v, &i8);
        sbuf_addf(out, "I:%lld", (long long)i8);
        break;
    case XMLRPC_TYPE_BOOL:
        xmlrpc_read_bool(&env, v, &b);
        sbuf_addf(out, "b:%s", b ? "true" : "false");
        break;
    default:
        sbuf_addf(out, "?:%s", xmlrpc_type_name(xmlrpc_value_type(v)));
        break;
    }
    xmlrpc_env_clean(&env);
}

/* "method(s:..., i:..., b:...)": the types and values of a call. */
static char *describe_call(const char *method, xmlrpc_value *params)
{
    struct sbuf sb = SBUF_INIT;
    xmlrpc_env env;
    int n;

    xmlrpc_env_init(&env);
    n = xmlrpc_array_size(&env, params);
    sbuf_addf(&sb, "%s(", method);
    for (int i = 0; i < n; i++) {
        xmlrpc_value *v = NULL;

        xmlrpc_array_read_item(&env, params, (unsigned)i, &v);
        sbuf_adds(&sb, i ? ", " : "");
        describe_value(&sb, v);
        xmlrpc_DECREF(v);
    }
    sbuf_addch(&sb, ')');
    xmlrpc_env_clean(&env);
    return sbuf_detach(&sb);
}

static void record_line(const char *line)
{
    FILE *f = fopen(record_path, "a");

    if (!f)
        _exit(4);
    fprintf(f, "%s\n", line);
    fclose(f);
}

static xmlrpc_value *answer(xmlrpc_env *env, const char *host UNUSED, const char *method,
                            xmlrpc_value *params, void *user UNUSED)
{
    char *line = describe_call(method, params);
    bool doc = ends_with(method, ".info");
    xmlrpc_value *session = NULL;
    const char *s = NULL;

    record_line(line);
    free(line);
    switch (server_mode) {
    case M_OK:
        return doc ? xmlrpc_build_value(env, "(bsi)", 1, VM_DOC, 0)
                   : xmlrpc_build_value(env, "(bii)", 1, 42, 0);
    case M_OK_I8:
        return xmlrpc_build_value(env, "(bII)", 1, (xmlrpc_int64)42, (xmlrpc_int64)0);
    case M_FAIL3:
        if (!doc)
            return xmlrpc_build_value(env, "(bii)", 1, 42, 0);
        return xmlrpc_build_value(env, "(bsi)", 0,
                                  "[one.vm.info] Error getting virtual machine [7].", 0x400);
    case M_FAIL5:
        return xmlrpc_build_value(env, "(bsiiI)", 0, "[one.image.delete] Image in use.", 0x800,
                                  7, (xmlrpc_int64)-1);
    case M_FAULT:
        xmlrpc_env_set_fault(env, -501, "Type mismatch: expected boolean");
        return NULL;
    case M_FAULT_ECHO:
        xmlrpc_array_read_item(env, params, 0, &session);
        if (!env->fault_occurred)
            xmlrpc_read_string(env, session, &s);
        if (!env->fault_occurred)
            xmlrpc_env_set_fault_formatted(env, -500, "session '%s' rejected (%s)", s, s);
        free((void *)s);
        if (session)
            xmlrpc_DECREF(session);
        return NULL;
    case M_SHORT:
        return xmlrpc_build_value(env, "(bi)", 1, 42);
    case M_LONG:
        return xmlrpc_build_value(env, "(biii)", 1, 42, 0, 1);
    case M_FAIL4:
        return xmlrpc_build_value(env, "(bsii)", 0, "[one.vm.info] gone", 0x400, 7);
    case M_NOT_ARRAY:
        return xmlrpc_build_value(env, "i", 42);
    case M_WRONG_TYPES:
        return doc ? xmlrpc_build_value(env, "(bii)", 1, 42, 0)
                   : xmlrpc_build_value(env, "(bsi)", 1, "42", 0);
    }
    return NULL;
}

static void serve_abyss(int fd)
{
    xmlrpc_server_abyss_parms parms = { 0 };
    xmlrpc_registry *reg;
    xmlrpc_env env;

    xmlrpc_env_init(&env);
    xmlrpc_server_abyss_global_init(&env);
    reg = xmlrpc_registry_new(&env);
    if (env.fault_occurred)
        _exit(2);
    xmlrpc_registry_set_default_method(&env, reg, answer, NULL);
    parms.registryP = reg;
    parms.socket_bound = 1;
    parms.socket_handle = fd;
    xmlrpc_server_abyss(&env, &parms, XMLRPC_APSIZE(socket_handle));
    _exit(env.fault_occurred ? 3 : 0);
}

/* Starts the scripted server; returns its endpoint. */
static char *start_abyss(enum mode mode)
{
    int port;
    int fd = listen_local(&port);

    server_mode = mode;
    start_server(serve_abyss, fd);
    return endpoint_for(port);
}

static struct one_client *open_on(const char *endpoint, const char *session, unsigned timeout)
{
    char *auth = write_in("one_auth", session);
    struct one_opts opts = { .endpoint = endpoint, .auth_file = auth, .timeout_s = timeout };
    struct one_client *c = one_open(&opts);

    cr_assert_not_null(c, "one_open: %s", fail_reason());
    free(auth);
    return c;
}

static struct one_client *open_abyss(enum mode mode)
{
    char *ep = start_abyss(mode);
    struct one_client *c = open_on(ep, SESSION "\n", 10);

    free(ep);
    return c;
}

static void assert_recorded(const char *expected)
{
    char *got = read_text(record_path);

    cr_assert_str_eq(got, expected);
    free(got);
}

static void assert_reason(const char *expected)
{
    cr_assert(failed(), "no reason recorded");
    cr_assert_str_eq(fail_reason(), expected);
    cr_assert_null(strstr(fail_reason(), SECRET), "the secret leaked: %s", fail_reason());
}

/* ---- successes and the parameters sent ---- */

Test(one, success_with_int_value)
{
    struct one_client *c = open_abyss(M_OK);
    int id = -7;

    cr_assert_eq(one_image_allocate(c, "NAME=x", 105, false, &id), 0, "%s", fail_reason());
    cr_assert_eq(id, 42);
    cr_assert_eq(one_last_code(c), 0);
    cr_assert(!failed());
    one_close(c);
}

Test(one, success_with_i8_value)
{
    struct one_client *c = open_abyss(M_OK_I8);
    int id = -7;

    cr_assert_eq(one_vm_disksaveas(c, 7, 0, "saved", "", -1, &id), 0, "%s", fail_reason());
    cr_assert_eq(id, 42);
    one_close(c);
}

Test(one, success_with_document)
{
    struct one_client *c = open_abyss(M_OK);
    char *xml = NULL;

    cr_assert_eq(one_vm_info(c, 7, &xml), 0, "%s", fail_reason());
    cr_assert_str_eq(xml, VM_DOC);
    free(xml);
    one_close(c);
}

Test(one, every_call_sends_the_session_and_typed_parameters)
{
    struct one_client *c = open_abyss(M_OK);
    char *xml = NULL;
    int id = 0;

    cr_assert_eq(one_vm_info(c, 7, &xml), 0);
    free(xml);
    cr_assert_eq(one_vm_update(c, 7, "A=\"1\"\nB=\"2\"", 1), 0);
    cr_assert_eq(one_vm_disksaveas(c, 7, 2, "saved", "", -1, &id), 0);
    cr_assert_eq(one_vm_allocate(c, "NAME=vm", true, &id), 0);
    cr_assert_eq(one_vmpool_info(c, -2, -1, -1, -1, &xml), 0);
    free(xml);
    cr_assert_eq(one_datastore_info(c, 100, &xml), 0);
    free(xml);
    cr_assert_eq(one_image_info(c, 14, &xml), 0);
    free(xml);
    cr_assert_eq(one_image_allocate(c, "NAME=\"i\"", 105, true, &id), 0);
    cr_assert_eq(one_image_update(c, 14, "X=1", 0), 0);
    cr_assert_eq(one_image_chown(c, 14, 2, -1), 0);
    cr_assert_eq(one_image_delete(c, 14, true), 0);
    cr_assert_eq(one_image_delete(c, 15, false), 0);
    cr_assert_eq(one_imagepool_info(c, -2, -1, -1, &xml), 0);
    free(xml);
    cr_assert_eq(one_user_info_self(c, &xml), 0);
    free(xml);
    assert_recorded("one.vm.info(s:" SESSION ", i:7)\n"
                    "one.vm.update(s:" SESSION ", i:7, s:A=\"1\"\\nB=\"2\", i:1)\n"
                    "one.vm.disksaveas(s:" SESSION ", i:7, i:2, s:saved, s:, i:-1)\n"
                    "one.vm.allocate(s:" SESSION ", s:NAME=vm, b:true)\n"
                    "one.vmpool.info(s:" SESSION ", i:-2, i:-1, i:-1, i:-1)\n"
                    "one.datastore.info(s:" SESSION ", i:100)\n"
                    "one.image.info(s:" SESSION ", i:14)\n"
                    "one.image.allocate(s:" SESSION ", s:NAME=\"i\", i:105, b:true)\n"
                    "one.image.update(s:" SESSION ", i:14, s:X=1, i:0)\n"
                    "one.image.chown(s:" SESSION ", i:14, i:2, i:-1)\n"
                    "one.image.delete(s:" SESSION ", i:14, b:true)\n"
                    "one.image.delete(s:" SESSION ", i:15, b:false)\n"
                    "one.imagepool.info(s:" SESSION ", i:-2, i:-1, i:-1)\n"
                    "one.user.info(s:" SESSION ", i:-1)\n");
    one_close(c);
}

/* Each client has its own xmlrpc-c client; the library's global setup is
 * counted, so closing one leaves the other working. */
Test(one, clients_are_independent)
{
    char *ep = start_abyss(M_OK);
    struct one_client *a = open_on(ep, SESSION "\n", 10);
    struct one_client *b = open_on(ep, "other:pw\n", 10);
    int id = 0;

    one_close(a);
    cr_assert_eq(one_image_delete(b, 9, false), 0, "%s", fail_reason());
    cr_assert_eq(one_vm_allocate(b, "NAME=z", false, &id), 0, "%s", fail_reason());
    cr_assert_eq(id, 42);
    assert_recorded("one.image.delete(s:other:pw, i:9, b:false)\n"
                    "one.vm.allocate(s:other:pw, s:NAME=z, b:false)\n");
    one_close(b);
    free(ep);
}

/* ---- failures ---- */

Test(one, template_that_is_not_utf8_is_never_sent)
{
    struct one_client *c = open_abyss(M_OK);

    cr_assert_eq(one_vm_update(c, 7, "NOTE=\"caf\xe9\"", 1), -1);
    cr_assert(starts_with(fail_reason(), "cannot encode the parameters of one.vm.update: "),
              "%s", fail_reason());
    cr_assert_eq(one_last_code(c), -1);
    cr_assert_neq(access(record_path, F_OK), 0, "a call reached the server");
    one_close(c);
}

Test(one, failure_of_three_elements)
{
    struct one_client *c = open_abyss(M_FAIL3);
    char *xml = (char *)"untouched";

    cr_assert_eq(one_vm_info(c, 7, &xml), -1);
    cr_assert_null(xml);
    assert_reason("oned refused one.vm.info: [one.vm.info] Error getting virtual machine [7].");
    cr_assert_eq(one_last_code(c), ONE_NO_EXISTS);
    one_close(c);
}

Test(one, success_after_failure_resets_the_code)
{
    struct one_client *c = open_abyss(M_FAIL3);
    char *xml = NULL;

    cr_assert_eq(one_vm_info(c, 7, &xml), -1);
    cr_assert_eq(one_last_code(c), ONE_NO_EXISTS);
    cr_assert_eq(one_image_delete(c, 14, false), 0);
    cr_assert_eq(one_last_code(c), 0);
    one_close(c);
}

Test(one, failure_of_five_elements_with_i8)
{
    struct one_client *c = open_abyss(M_FAIL5);

    cr_assert_eq(one_image_delete(c, 14, true), -1);
    assert_reason("oned refused one.image.delete: [one.image.delete] Image in use.");
    cr_assert_eq(one_last_code(c), ONE_ACTION);
    one_close(c);
}

Test(one, fault)
{
    struct one_client *c = open_abyss(M_FAULT);
    int id = 5;

    cr_assert_eq(one_vm_allocate(c, "NAME=x", false, &id), -1);
    cr_assert_eq(id, 5, "a failed call must not touch *id");
    assert_reason("oned refused one.vm.allocate: Type mismatch: expected boolean (fault -501)");
    cr_assert_eq(one_last_code(c), -1);
    one_close(c);
}

Test(one, secret_quoted_by_the_server_is_redacted)
{
    struct one_client *c = open_abyss(M_FAULT_ECHO);

    cr_assert_eq(one_image_delete(c, 1, false), -1);
    assert_reason("oned refused one.image.delete: session 'oneadmin:***' rejected "
                  "(oneadmin:***) (fault -500)");
    one_close(c);
}

Test(one, success_array_of_wrong_arity)
{
    struct one_client *c = open_abyss(M_SHORT);
    int id = 5;

    cr_assert_eq(one_vm_allocate(c, "NAME=x", false, &id), -1);
    cr_assert_eq(id, 5);
    assert_reason("unexpected answer from oned to one.vm.allocate: "
                  "not an array of at least 3 elements");
    cr_assert_eq(one_last_code(c), -1);
    one_close(c);
}

Test(one, success_array_too_long)
{
    struct one_client *c = open_abyss(M_LONG);
    int id = 5;

    cr_assert_eq(one_vm_disksaveas(c, 1, 0, "n", "", -1, &id), -1);
    cr_assert_eq(id, 5);
    assert_reason("unexpected answer from oned to one.vm.disksaveas: "
                  "a success array must have 3 elements");
    one_close(c);
}

Test(one, failure_array_of_wrong_arity)
{
    struct one_client *c = open_abyss(M_FAIL4);
    char *xml = NULL;

    cr_assert_eq(one_vm_info(c, 7, &xml), -1);
    assert_reason("unexpected answer from oned to one.vm.info: "
                  "a failure array must have 3 or 5 elements");
    cr_assert_eq(one_last_code(c), -1);
    one_close(c);
}

Test(one, answer_that_is_not_an_array)
{
    struct one_client *c = open_abyss(M_NOT_ARRAY);

    cr_assert_eq(one_image_chown(c, 1, 2, 3), -1);
    cr_assert(starts_with(fail_reason(), "unexpected answer from oned to one.image.chown: "),
              "%s", fail_reason());
    one_close(c);
}

Test(one, value_of_the_wrong_type)
{
    struct one_client *c = open_abyss(M_WRONG_TYPES);
    char *xml = (char *)"untouched";
    int id = 5;

    cr_assert_eq(one_image_allocate(c, "NAME=x", 1, false, &id), -1);
    cr_assert_eq(id, 5);
    assert_reason("unexpected answer from oned to one.image.allocate: the value is not an "
                  "integer");
    fail_reset();
    cr_assert_eq(one_image_info(c, 1, &xml), -1);
    cr_assert_null(xml);
    assert_reason("unexpected answer from oned to one.image.info: the value is not a string");
    one_close(c);
}

/* ---- replaying a real oned ---- */

static void serve_replay_one(int fd)
{
    struct sbuf req = SBUF_INIT;
    struct sbuf body = SBUF_INIT;
    const char *cl;
    size_t len;
    char ch;
    char *head;

    while (!ends_with(req.buf, "\r\n\r\n")) {
        if (read(fd, &ch, 1) != 1)
            return;
        sbuf_addch(&req, ch);
    }
    cl = strcasestr(req.buf, "\r\nContent-Length:");
    len = cl ? strtoul(cl + 17, NULL, 10) : 0;
    if (strcasestr(req.buf, "\r\nExpect: 100-continue"))
        (void)!write(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    sbuf_grow(&body, len);
    while (body.len < len) {
        ssize_t n = read(fd, body.buf + body.len, len - body.len);

        if (n <= 0)
            return;
        body.len += (size_t)n;
        body.buf[body.len] = '\0';
    }
    test_write_file(record_path, body.buf);
    head = xasprintf("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     replay.len);
    (void)!write(fd, head, strlen(head));
    (void)!write(fd, replay.buf, replay.len);
    free(head);
    sbuf_release(&body);
    sbuf_release(&req);
}

static void serve_replay(int lfd)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL);

        if (fd < 0 && errno == EINTR)
            continue;
        if (fd < 0)
            _exit(2);
        serve_replay_one(fd);
        close(fd);
    }
}

/* A client of a server answering every request with the bytes in `replay`. */
static struct one_client *open_replay_bytes(void)
{
    struct one_client *c;
    char *ep;
    int port;
    int fd = listen_local(&port);

    start_server(serve_replay, fd);
    ep = endpoint_for(port);
    c = open_on(ep, "oneadmin:labpass\n", 10);
    free(ep);
    return c;
}

/* ... with capture NAME's response, byte for byte, and the lab's session. */
static struct one_client *open_replay(const char *name)
{
    char *file = xasprintf("%s.response.xml", name);
    char *path = fixture(file);

    cr_assert_eq(sbuf_read_file(&replay, path, 0), 0, "fixture %s: %s", path, strerror(errno));
    free(path);
    free(file);
    return open_replay_bytes();
}

static char *describe_request(const char *xml)
{
    xmlrpc_env env;
    xmlrpc_value *params = NULL;
    const char *method = NULL;
    char *d;

    xmlrpc_env_init(&env);
    xmlrpc_parse_call(&env, xml, strlen(xml), &method, &params);
    cr_assert(!env.fault_occurred, "bad methodCall: %s", env.fault_string);
    d = describe_call(method, params);
    free((void *)method);
    xmlrpc_DECREF(params);
    xmlrpc_env_clean(&env);
    return d;
}

static void assert_request(const char *expected)
{
    char *sent = read_text(record_path);
    char *got = describe_request(sent);

    cr_assert_str_eq(got, expected);
    free(got);
    free(sent);
}

/* Our request means exactly what the captured client sent. */
static void assert_request_as_captured(const char *name)
{
    char *file = xasprintf("%s.request.xml", name);
    char *captured = fixture_text(file);
    char *want = describe_request(captured);

    assert_request(want);
    free(want);
    free(captured);
    free(file);
}

/* The .inner.xml files are the decoded value plus a newline. */
static void assert_inner(const char *name, const char *xml)
{
    char *file = xasprintf("%s.inner.xml", name);
    char *inner = fixture_text(file);

    cr_assert(ends_with(inner, "\n"));
    inner[strlen(inner) - 1] = '\0';
    cr_assert_eq(strlen(xml), strlen(inner));
    cr_assert(streq(xml, inner), "the document differs from %s", file);
    free(inner);
    free(file);
}

Test(one, replay_vm_info_running)
{
    struct one_client *c = open_replay("vm.info.running");
    char *xml = NULL;

    cr_assert_eq(one_vm_info(c, 6, &xml), 0, "%s", fail_reason());
    assert_inner("vm.info.running", xml);
    cr_assert(starts_with(xml, "<VM><ID>6</ID>"));
    assert_request("one.vm.info(s:oneadmin:labpass, i:6)");
    free(xml);
    one_close(c);
}

Test(one, replay_imagepool_info)
{
    struct one_client *c = open_replay("imagepool.info");
    char *xml = NULL;

    cr_assert_eq(one_imagepool_info(c, -2, -1, -1, &xml), 0, "%s", fail_reason());
    assert_inner("imagepool.info", xml);
    assert_request_as_captured("imagepool.info");
    free(xml);
    one_close(c);
}

Test(one, replay_user_info_self)
{
    struct one_client *c = open_replay("user.info.self");
    char *xml = NULL;

    cr_assert_eq(one_user_info_self(c, &xml), 0, "%s", fail_reason());
    assert_inner("user.info.self", xml);
    assert_request("one.user.info(s:oneadmin:labpass, i:-1)");
    free(xml);
    one_close(c);
}

Test(one, replay_unknown_id_with_i8)
{
    struct one_client *c = open_replay("error.unknown-id");
    char *xml = NULL;

    cr_assert_eq(one_vm_info(c, 999999, &xml), -1);
    cr_assert_null(xml);
    assert_reason("oned refused one.vm.info: [one.vm.info] Error getting virtual machine "
                  "[999999].");
    cr_assert_eq(one_last_code(c), ONE_NO_EXISTS);
    one_close(c);
}

Test(one, replay_wrong_session)
{
    struct one_client *c = open_replay("error.wrong-session");
    char *xml = NULL;

    cr_assert_eq(one_vm_info(c, 6, &xml), -1);
    assert_reason("oned refused one.vm.info: [one.vm.info] User couldn't be authenticated, "
                  "aborting call.");
    cr_assert_eq(one_last_code(c), ONE_AUTHENTICATION);
    one_close(c);
}

static const char source_tmpl[] = "NAME=\"xr-with-source\"\nTYPE=\"DATABLOCK\"\n"
                                  "SOURCE=\"/var/lib/one/datastores/105/xr-external-source\"\n"
                                  "FORMAT=\"qcow2\"\nSIZE=\"64\"";

Test(one, replay_image_allocate_name_clash)
{
    struct one_client *c = open_replay("image.allocate.name-clash");
    int id = -5;

    cr_assert_eq(one_image_allocate(c, source_tmpl, 105, false, &id), -1);
    cr_assert_eq(id, -5);
    assert_reason("oned refused one.image.allocate: [one.image.allocate] Error allocating a "
                  "new image. NAME is already taken by IMAGE 14.");
    cr_assert_eq(one_last_code(c), ONE_ALLOCATE);
    assert_request_as_captured("image.allocate.name-clash");
    one_close(c);
}

Test(one, replay_image_allocate_source_admin)
{
    struct one_client *c = open_replay("image.allocate.source.admin");
    int id = -1;

    cr_assert_eq(one_image_allocate(c, source_tmpl, 105, false, &id), 0, "%s", fail_reason());
    cr_assert_eq(id, 14);
    cr_assert_eq(one_last_code(c), 0);
    assert_request_as_captured("image.allocate.source.admin");
    one_close(c);
}

Test(one, replay_vm_update_append)
{
    struct one_client *c = open_replay("vm.update.append");

    cr_assert_eq(one_vm_update(c, 6, "LAB_NOTE=\"appended by one.vm.update\"", 1), 0, "%s",
                 fail_reason());
    assert_request_as_captured("vm.update.append");
    one_close(c);
}

Test(one, replay_vm_disksaveas)
{
    struct one_client *c = open_replay("vm.disksaveas.poweroff");
    int id = -1;

    cr_assert_eq(one_vm_disksaveas(c, 6, 0, "xr-saved", "", -1, &id), 0, "%s", fail_reason());
    cr_assert_eq(id, 13);
    assert_request_as_captured("vm.disksaveas.poweroff");
    one_close(c);
}

Test(one, replay_image_chown)
{
    struct one_client *c = open_replay("image.chown");

    cr_assert_eq(one_image_chown(c, 14, 2, -1), 0, "%s", fail_reason());
    assert_request_as_captured("image.chown");
    one_close(c);
}

/* xmlrpc-c's own limit is 512 KiB, less than a pool listing of a busy cloud. */
Test(one, document_larger_than_xmlrpc_c_default_limit)
{
    struct one_client *c;
    size_t big = 3u << 20;
    char *xml = NULL;

    sbuf_adds(&replay, "<?xml version=\"1.0\"?>\r\n<methodResponse><params><param><value>"
                       "<array><data><value><boolean>1</boolean></value><value><string>");
    sbuf_grow(&replay, big);
    memset(replay.buf + replay.len, 'x', big);
    sbuf_setlen(&replay, replay.len + big);
    sbuf_adds(&replay, "</string></value><value><i4>0</i4></value></data></array></value>"
                       "</param></params></methodResponse>\r\n");
    c = open_replay_bytes();
    cr_assert_eq(one_vmpool_info(c, -2, -1, -1, -1, &xml), 0, "%s", fail_reason());
    cr_assert_eq(strlen(xml), big);
    cr_assert_eq(xml[0], 'x');
    cr_assert_eq(xml[big - 1], 'x');
    free(xml);
    one_close(c);
}

/* ---- oned down or hanging ---- */

static int closed_port(void)
{
    int port;
    int fd = listen_local(&port);

    close(fd);
    return port;
}

Test(one, oned_down)
{
    char *ep = endpoint_for(closed_port());
    struct one_client *c = open_on(ep, SESSION "\n", 10);
    char *prefix = xasprintf("cannot reach oned at %s: ", ep);
    char *xml = NULL;
    double start = now_s();

    cr_assert_eq(one_vm_info(c, 1, &xml), -1);
    cr_assert_lt(now_s() - start, 5.0);
    cr_assert(starts_with(fail_reason(), prefix), "%s", fail_reason());
    cr_assert_gt(strlen(fail_reason()), strlen(prefix) + 5, "no transport message");
    cr_assert(strstr(fail_reason(), "connect"), "%s", fail_reason());
    cr_assert_null(strstr(fail_reason(), "libcurl failed"), "%s", fail_reason());
    cr_assert_null(strstr(fail_reason(), SECRET));
    cr_assert_eq(one_last_code(c), -1);
    free(prefix);
    free(ep);
    one_close(c);
}

Test(one, oned_hanging_is_bounded_by_the_timeout)
{
    int port;
    int fd = listen_local(&port); /* the kernel accepts; nobody ever answers */
    char *ep = endpoint_for(port);
    struct one_client *c = open_on(ep, SESSION "\n", 1);
    char *prefix = xasprintf("cannot reach oned at %s: ", ep);
    char *xml = NULL;
    double start = now_s(), elapsed;

    cr_assert_eq(one_vm_info(c, 1, &xml), -1);
    elapsed = now_s() - start;
    /* xmlrpc-c notices curl's timeout at its next 3 s poll (one.h) */
    cr_assert_geq(elapsed, 0.95, "gave up after %.2fs", elapsed);
    cr_assert_lt(elapsed, 4.5, "took %.2fs with a 1s timeout", elapsed);
    cr_assert(starts_with(fail_reason(), prefix), "%s", fail_reason());
    cr_assert(strstr(fail_reason(), "timed out"), "%s", fail_reason());
    cr_assert_eq(one_last_code(c), -1);
    close(fd);
    free(prefix);
    free(ep);
    one_close(c);
}

/* ---- endpoint and credential lookup ---- */

/* Lookup tests that fall back to the passwd home or oned's home cannot run
 * where those hold real OpenNebula files. */
static void skip_if_real_one_files(const char *name)
{
    const struct passwd *pw = getpwuid(getuid());
    char *sys = xasprintf("/var/lib/one/.one/%s", name);
    char *home = xasprintf("%s/.one/%s", pw ? pw->pw_dir : "/nonexistent", name);
    bool real = access(sys, F_OK) == 0 || access(home, F_OK) == 0;

    free(sys);
    free(home);
    if (real)
        cr_skip_test("this machine has a real %s", name);
}

static void mkdir_one(void)
{
    char *p = path_in(".one");

    cr_assert_eq(mkdir(p, 0700), 0, "mkdir %s: %s", p, strerror(errno));
    free(p);
}

Test(one, one_auth_first_line_trailing_blanks_and_cr_stripped)
{
    char *ep = start_abyss(M_OK);
    char *auth = write_in("auth", "oneadmin:" SECRET " \t\r\nsecond:line\n");
    struct one_opts opts = { .endpoint = ep };
    struct one_client *c;

    setenv("ONE_AUTH", auth, 1);
    c = one_open(&opts);
    cr_assert_not_null(c, "%s", fail_reason());
    cr_assert_str_eq(one_user(c), "oneadmin");
    cr_assert_eq(one_image_delete(c, 3, false), 0, "%s", fail_reason());
    assert_recorded("one.image.delete(s:oneadmin:" SECRET ", i:3, b:false)\n");
    one_close(c);
    free(auth);
    free(ep);
}

Test(one, one_auth_naming_no_file_falls_through_to_home)
{
    struct one_client *c;
    char *home_auth;

    skip_if_real_one_files("one_auth");
    mkdir_one();
    home_auth = write_in(".one/one_auth", "homeuser:pw\n");
    setenv("ONE_AUTH", "/nonexistent/one_auth", 1);
    c = one_open(NULL);
    cr_assert_not_null(c, "%s", fail_reason());
    cr_assert_str_eq(one_user(c), "homeuser");
    one_close(c);
    free(home_auth);
}

Test(one, no_credentials_anywhere)
{
    skip_if_real_one_files("one_auth");
    setenv("ONE_AUTH", "/nonexistent/one_auth", 1);
    cr_assert_null(one_open(NULL));
    cr_assert(starts_with(fail_reason(), "no OpenNebula credentials"), "%s", fail_reason());
}

Test(one, explicit_auth_file_must_exist)
{
    struct one_opts opts = { .auth_file = "/nonexistent/auth" };

    cr_assert_null(one_open(&opts));
    cr_assert(strstr(fail_reason(), "/nonexistent/auth"), "%s", fail_reason());
}

Test(one, malformed_auth_file_is_refused_without_quoting_it)
{
    char *auth = write_in("auth", SECRET "\n");
    struct one_opts opts = { .auth_file = auth };

    cr_assert_null(one_open(&opts));
    cr_assert(strstr(fail_reason(), "user:password"), "%s", fail_reason());
    cr_assert_null(strstr(fail_reason(), SECRET), "%s", fail_reason());
    free(auth);
}

Test(one, endpoint_from_env_and_opts)
{
    char *auth = write_in("auth", SESSION "\n");
    struct one_opts opts = { .auth_file = auth };
    struct one_client *c;

    setenv("ONE_XMLRPC", "http://oned.example:2633/RPC2", 1);
    c = one_open(&opts);
    cr_assert_not_null(c, "%s", fail_reason());
    cr_assert_str_eq(one_endpoint(c), "http://oned.example:2633/RPC2");
    one_close(c);

    opts.endpoint = "http://given:1/RPC2";
    c = one_open(&opts);
    cr_assert_not_null(c, "%s", fail_reason());
    cr_assert_str_eq(one_endpoint(c), "http://given:1/RPC2");
    one_close(c);
    free(auth);
}

Test(one, endpoint_from_home_file_then_default)
{
    char *auth = write_in("auth", SESSION "\n");
    struct one_opts opts = { .auth_file = auth };
    struct one_client *c;
    char *file;

    skip_if_real_one_files("one_endpoint");
    c = one_open(&opts);
    cr_assert_not_null(c, "%s", fail_reason());
    cr_assert_str_eq(one_endpoint(c), "http://localhost:2633/RPC2");
    one_close(c);

    mkdir_one();
    file = write_in(".one/one_endpoint", "http://front:2633/RPC2 \n\n");
    c = one_open(&opts);
    cr_assert_not_null(c, "%s", fail_reason());
    cr_assert_str_eq(one_endpoint(c), "http://front:2633/RPC2");
    one_close(c);
    free(file);
    free(auth);
}

Test(one, driver_settings_come_from_qcow2c_conf)
{
    int port;
    int fd = listen_local(&port); /* hangs: shows XMLRPC_TIMEOUT is used */
    char *ep = endpoint_for(port);
    char *auth = write_in("conf_auth", "confuser:" SECRET "\n");
    char *env_auth = write_in("env_auth", "envuser:x\n");
    char *conf_text = xasprintf("ONE_XMLRPC=\"%s\"\nONE_AUTH=\"%s\"\nXMLRPC_TIMEOUT=1\n", ep, auth);
    char *conf = write_in("qcow2c.conf", conf_text);
    struct one_client *c;
    char *xml = NULL;
    double start;

    setenv("ONE_XMLRPC", "http://from-env:1/RPC2", 1);
    setenv("ONE_AUTH", env_auth, 1);
    cr_assert_eq(config_load_file(conf), 0, "%s", fail_reason());
    c = one_open_driver();
    cr_assert_not_null(c, "%s", fail_reason());
    cr_assert_str_eq(one_endpoint(c), ep);
    cr_assert_str_eq(one_user(c), "confuser");
    start = now_s();
    cr_assert_eq(one_vm_info(c, 1, &xml), -1);
    cr_assert_lt(now_s() - start, 4.5, "XMLRPC_TIMEOUT=1 was not used");
    cr_assert(strstr(fail_reason(), "timed out"), "%s", fail_reason());
    one_close(c);
    close(fd);
    free(conf);
    free(conf_text);
    free(env_auth);
    free(auth);
    free(ep);
}

Test(one, driver_defaults_use_the_environment)
{
    char *auth = write_in("env_auth", "envuser:x\n");
    struct one_client *c;

    setenv("ONE_XMLRPC", "http://from-env:1/RPC2", 1);
    setenv("ONE_AUTH", auth, 1);
    cr_assert_eq(config_load_file(NULL), 0);
    c = one_open_driver();
    cr_assert_not_null(c, "%s", fail_reason());
    cr_assert_str_eq(one_endpoint(c), "http://from-env:1/RPC2");
    cr_assert_str_eq(one_user(c), "envuser");
    one_close(c);
    free(auth);
}

/* ---- the secret in log lines ---- */

Test(one, debug_lines_never_show_the_secret)
{
    char *ep = start_abyss(M_FAULT_ECHO); /* before XMLRPC_TRACE_XML: its own traces */
    char *log = path_in("stderr");
    int saved = dup(STDERR_FILENO);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    struct one_client *c;
    char *text;

    cr_assert_geq(fd, 0);
    cr_assert_geq(saved, 0);
    log_enable_debug(true);
    /* xmlrpc-c's client would print whole calls, session included */
    setenv("XMLRPC_TRACE_XML", "1", 1);
    dup2(fd, STDERR_FILENO);
    c = open_on(ep, SESSION "\n", 10);
    cr_assert_eq(one_image_delete(c, 1, false), -1);
    /* a second failure is logged as an ERROR line */
    cr_assert_eq(one_image_delete(c, 2, false), -1);
    one_close(c);
    dup2(saved, STDERR_FILENO);
    close(fd);
    close(saved);
    log_enable_debug(false);
    text = read_text(log);
    cr_assert(strstr(text, "DEBUG: "), "no debug line: %s", text);
    cr_assert(strstr(text, "user oneadmin"), "%s", text);
    cr_assert(strstr(text, "ERROR: "), "no error line: %s", text);
    cr_assert(strstr(text, "one.image.delete"), "%s", text);
    cr_assert(strstr(text, "oneadmin:***"), "%s", text);
    cr_assert_null(strstr(text, SECRET), "the secret leaked: %s", text);
    free(text);
    free(log);
    free(ep);
}
