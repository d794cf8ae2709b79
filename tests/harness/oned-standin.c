/*
 * oned-standin - an XML-RPC server that answers the calls qcow2c's drivers
 * make to oned the way a real oned 7.5 does, for tests on machines without
 * OpenNebula.
 *
 *   oned-standin --state DIR --port PORT|0 [--pidfile F] [--portfile F]
 *
 * Serves http://127.0.0.1:PORT/RPC2 (port 0: a free one, written to
 * --portfile) until SIGTERM. Objects, users and failure injections live in
 * DIR as plain files (standin_state.h) that tests set up and inspect with
 * standin-ctl; they are re-read on every request. Requests are served one at
 * a time, each under DIR/.lock, so a request sees and leaves the files whole.
 *
 * Every call is appended to DIR/calls.log, one line, tab-separated:
 *   TIME(UTC, ms)  USER  METHOD  PARAMETERS(session left out)  OUTCOME
 * where OUTCOME is "ok <id>", "ok document", "error <code> <message>",
 * "fault <code> <text>", "hang" or "drop".
 *
 * DIR/fail lines "METHOD COUNT CODE MESSAGE" make the next COUNT calls of
 * METHOD fail before anything else is looked at: CODE a number (decimal or
 * 0x...) answers oned's failure array with that code and MESSAGE ("[METHOD] "
 * put in front unless MESSAGE starts with '['), "fault" an XML-RPC fault
 * (code -500, MESSAGE as its text), "hang" keeps the connection open without
 * ever answering (in a child process, so that later calls are still served),
 * "drop" closes it without an answer.
 *
 * HTTP: one request per connection (Connection: close), Content-Length
 * bodies, "Expect: 100-continue" honoured. The methodResponse is written by
 * xmlrpc-c, as oned's; the methodCall is read with libxml2 (parse_call).
 */
#include "util.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include <xmlrpc-c/base.h>

#include "cleanup.h"
#include "fsutil.h"
#include "log.h"
#include "num.h"
#include "sbuf.h"
#include "xml.h"

#include "standin_tmpl.h"
#include "standin_state.h"
#include "standin_rpc.h"
#include "standin_api.h"

#define MAX_HEADER (64u << 10)
#define MAX_BODY (64u << 20)
/* A client that sends nothing for this long is dropped. */
#define READ_TIMEOUT_MS 30000
#define MAX_HANGING 64

enum outcome {
    ANSWER,
    HANG,
    DROP,
};

static const struct method {
    const char *name;
    void (*run)(struct req *r);
} methods[] = {
    { "one.vm.info", m_vm_info },
    { "one.vm.update", m_vm_update },
    { "one.vm.disksaveas", m_vm_disksaveas },
    { "one.vm.allocate", m_vm_allocate },
    { "one.vmpool.info", m_vmpool_info },
    { "one.datastore.info", m_datastore_info },
    { "one.image.info", m_image_info },
    { "one.image.allocate", m_image_allocate },
    { "one.image.update", m_image_update },
    { "one.image.chown", m_image_chown },
    { "one.image.delete", m_image_delete },
    { "one.imagepool.info", m_imagepool_info },
    { "one.user.info", m_user_info },
};

static volatile sig_atomic_t stopping;
static pid_t hanging[MAX_HANGING];
static size_t nhanging;

/* ---- one call ---- */

static const struct method *find_method(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(methods); i++)
        if (streq(methods[i].name, name))
            return &methods[i];
    return NULL;
}

/* The session (parameter 0) as a string, or NULL. */
static char *session_of(struct req *r)
{
    xmlrpc_env env;
    xmlrpc_value *v = NULL;
    const char *s = NULL;
    char *copy = NULL;

    if (r->nparams < 1)
        return NULL;
    xmlrpc_env_init(&env);
    xmlrpc_array_read_item(&env, r->params, 0, &v);
    if (!env.fault_occurred && xmlrpc_value_type(v) == XMLRPC_TYPE_STRING) {
        xmlrpc_read_string(&env, v, &s);
        if (!env.fault_occurred)
            copy = xstrdup(s);
        free((void *)s);
    }
    if (v)
        xmlrpc_DECREF(v);
    xmlrpc_env_clean(&env);
    return copy;
}

/* UserPool::authenticate for core users: "name:password". */
static bool authenticate(struct req *r, const char *session)
{
    const char *colon = session ? strchr(session, ':') : NULL;
    _cleanup_free_ char *name = colon ? xstrndup(session, (size_t)(colon - session)) : NULL;
    const struct user *u;

    if (users_load(r->dir, &r->users) < 0) {
        fprintf(stderr, "oned-standin: %s\n", fail_reason());
        fail_reset();
        return false;
    }
    u = name ? user_by_name(&r->users, name) : NULL;
    if (!u || !streq(u->password, colon + 1))
        return false;
    r->user = u;
    r->admin = user_is_admin(u);
    return true;
}

/* An injected failure: answers it, or tells the caller to hang or drop. */
static enum outcome inject(struct req *r, const struct injection *inj)
{
    char *end;
    long code;

    if (streq(inj->code, "hang") || streq(inj->code, "drop")) {
        sbuf_adds(&r->outcome, inj->code);
        return streq(inj->code, "hang") ? HANG : DROP;
    }
    if (streq(inj->code, "fault")) {
        reply_fault(r, XMLRPC_INTERNAL_ERROR, "%s", inj->message);
        return ANSWER;
    }
    errno = 0;
    code = strtol(inj->code, &end, 0); /* 1024 or 0x400 */
    if (errno || *end || end == inj->code || code < INT_MIN || code > INT_MAX)
        code = E_INTERNAL;
    if (inj->message[0] == '[')
        reply_error_text(r, (int)code, -1, inj->message);
    else
        reply_error(r, (int)code, -1, "%s", inj->message);
    return ANSWER;
}

/* What oned does once xmlrpc-c has the method and its parameters. */
static void execute(struct req *r, const char *session)
{
    const struct method *m = find_method(r->method);

    if (!m) {
        reply_fault(r, XMLRPC_NO_SUCH_METHOD_ERROR, "Method '%s' not defined", r->method);
        return;
    }
    if (r->nparams < 1) {
        /* RequestAttributes reads the session with paramList[0] */
        reply_fault(r, XMLRPC_INTERNAL_ERROR,
                    "Unexpected error executing code for particular method, detected by "
                    "Xmlrpc-c method registry code.  Method did not fail; rather, it did not "
                    "complete at all.  Subscript of xmlrpc_c::paramList out of bounds");
        return;
    }
    if (!authenticate(r, session)) {
        reply_error(r, E_AUTHENTICATION, -1, "User couldn't be authenticated, aborting call.");
        return;
    }
    m->run(r);
}

static void log_call(struct req *r, const char *session)
{
    struct sbuf line = SBUF_INIT;
    struct timespec ts;
    struct tm tm;
    char when[32];
    const char *colon = session ? strchr(session, ':') : NULL;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    sbuf_addf(&line, "%s.%03ldZ\t", when, ts.tv_nsec / 1000000);
    if (colon)
        sbuf_add_oneline(&line, session, (size_t)(colon - session));
    else
        sbuf_addch(&line, '-');
    sbuf_addf(&line, "\t%s\t", r->method);
    params_render(r, &line);
    sbuf_addch(&line, '\t');
    sbuf_add(&line, r->outcome.buf, r->outcome.len);
    if (calls_append(r->dir, line.buf) < 0) {
        fprintf(stderr, "oned-standin: %s\n", fail_reason());
        fail_reset();
    }
    sbuf_release(&line);
}

static void serialize(struct req *r, struct sbuf *out)
{
    xmlrpc_env env;
    xmlrpc_mem_block *mb;

    xmlrpc_env_init(&env);
    mb = XMLRPC_MEMBLOCK_NEW(char, &env, 0);
    if (!r->env.fault_occurred && !r->answer)
        xmlrpc_env_set_fault(&r->env, XMLRPC_INTERNAL_ERROR, "oned-standin: no answer");
    if (r->env.fault_occurred)
        xmlrpc_serialize_fault(&env, mb, &r->env);
    else
        xmlrpc_serialize_response2(&env, mb, r->answer, xmlrpc_dialect_i8);
    if (env.fault_occurred)
        die("cannot serialize the answer: %s", env.fault_string);
    sbuf_add(out, XMLRPC_MEMBLOCK_CONTENTS(char, mb), XMLRPC_MEMBLOCK_SIZE(char, mb));
    XMLRPC_MEMBLOCK_FREE(char, mb);
    xmlrpc_env_clean(&env);
}

static enum outcome run_call(const char *dir, const char *method, xmlrpc_value *params,
                             struct sbuf *out)
{
    struct req r = { .dir = dir, .method = method, .params = params, .outcome = SBUF_INIT };
    struct injection inj;
    enum outcome how = ANSWER;
    _cleanup_free_ char *session = NULL;
    int lock, taken;

    xmlrpc_env_init(&r.env);
    r.nparams = xmlrpc_array_size(&r.env, params);
    session = session_of(&r);
    lock = state_lock(dir);
    if (lock < 0)
        die("%s", fail_reason());
    taken = inject_take(dir, method, &inj);
    if (taken < 0) {
        fprintf(stderr, "oned-standin: %s\n", fail_reason());
        fail_reset();
    }
    if (taken > 0)
        how = inject(&r, &inj);
    else
        execute(&r, session);
    log_call(&r, session);
    state_unlock(lock);
    if (how == ANSWER)
        serialize(&r, out);
    if (taken > 0)
        injection_free(&inj);
    if (r.answer)
        xmlrpc_DECREF(r.answer);
    users_free(&r.users);
    sbuf_release(&r.outcome);
    xmlrpc_env_clean(&r.env);
    return how;
}

/* One <value> of the call as an xmlrpc-c value; NULL with a fault in env. */
static xmlrpc_value *param_value(xmlrpc_env *env, const struct xml *call, int i)
{
    _cleanup_free_ char *type =
        xml_get(call, "local-name(/methodCall/params/param[%d]/value/*)", i);
    _cleanup_free_ char *text = xml_get_def(call, "", "/methodCall/params/param[%d]/value", i);
    int64_t n;

    if (str_empty(type) || streq(type, "string")) /* a bare value is a string */
        return xmlrpc_string_new(env, text);
    if (streq(type, "i4") || streq(type, "int") || streq(type, "i8")) {
        if (parse_i64(text, streq(type, "i8") ? INT64_MIN : INT_MIN,
                      streq(type, "i8") ? INT64_MAX : INT_MAX, &n) < 0) {
            xmlrpc_env_set_fault_formatted(env, XMLRPC_PARSE_ERROR,
                                           "<%s> element has invalid value '%s'", type, text);
            return NULL;
        }
        return streq(type, "i8") ? xmlrpc_i8_new(env, n) : xmlrpc_int_new(env, (int)n);
    }
    if (streq(type, "boolean")) {
        if (!streq(text, "0") && !streq(text, "1")) {
            xmlrpc_env_set_fault_formatted(env, XMLRPC_PARSE_ERROR,
                                           "<boolean> element has invalid value '%s'", text);
            return NULL;
        }
        return xmlrpc_bool_new(env, streq(text, "1"));
    }
    if (streq(type, "double"))
        return xmlrpc_double_new(env, strtod(text, NULL));
    /* array, struct, base64, dateTime, nil: no oned method of ours takes
     * one, so any value of another type does to make the handler fault */
    return xmlrpc_nil_new(env);
}

/* xmlrpc_parse_call's job, done with libxml2 (common/xml.h), so that the
 * stand-in reads calls with the same parser the drivers use for documents. */
static int parse_call(xmlrpc_env *env, const char *body, size_t len, char **method,
                      xmlrpc_value **params)
{
    struct xml *call = xml_doc_parse(body, len, "methodCall");
    int n;

    *method = NULL;
    *params = NULL;
    if (!call) {
        xmlrpc_env_set_fault_formatted(env, XMLRPC_PARSE_ERROR,
                                       "Call XML not a proper XML-RPC call.  %s", fail_reason());
        fail_reset();
        return -1;
    }
    *method = xml_get(call, "/methodCall/methodName");
    if (str_empty(*method))
        xmlrpc_env_set_fault(env, XMLRPC_PARSE_ERROR,
                             "Call XML not a proper XML-RPC call.  No <methodName>");
    n = xml_count(call, "/methodCall/params/param");
    if (!env->fault_occurred)
        *params = xmlrpc_array_new(env);
    for (int i = 1; i <= n && !env->fault_occurred; i++) {
        xmlrpc_value *v = param_value(env, call, i);

        if (v) {
            xmlrpc_array_append_item(env, *params, v);
            xmlrpc_DECREF(v);
        }
    }
    xml_free(call);
    return env->fault_occurred ? -1 : 0;
}

/* The methodCall in `body`; the answer's bytes go to `out`. */
static enum outcome handle_body(const char *dir, const char *body, size_t len, struct sbuf *out)
{
    xmlrpc_env env;
    char *method = NULL;
    xmlrpc_value *params = NULL;
    enum outcome how;

    xmlrpc_env_init(&env);
    if (parse_call(&env, body, len, &method, &params) < 0) {
        struct req r = { .dir = dir, .method = "-", .outcome = SBUF_INIT };

        xmlrpc_env_init(&r.env);
        reply_fault(&r, env.fault_code, "%s", env.fault_string);
        log_call(&r, NULL);
        serialize(&r, out);
        sbuf_release(&r.outcome);
        xmlrpc_env_clean(&r.env);
        if (params)
            xmlrpc_DECREF(params);
        free(method);
        xmlrpc_env_clean(&env);
        return ANSWER;
    }
    how = run_call(dir, method, params, out);
    free(method);
    xmlrpc_DECREF(params);
    xmlrpc_env_clean(&env);
    return how;
}

/* ---- HTTP ---- */

static int wait_readable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int n;

    do
        n = poll(&p, 1, READ_TIMEOUT_MS);
    while (n < 0 && errno == EINTR);
    return n > 0 ? 0 : -1;
}

static int read_some(int fd, struct sbuf *sb)
{
    char buf[16384];
    ssize_t n;

    if (wait_readable(fd) < 0)
        return -1;
    do
        n = read(fd, buf, sizeof(buf));
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -1;
    sbuf_add(sb, buf, (size_t)n);
    return 0;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static void http_reply(int fd, const char *status, const char *type, const char *body, size_t len)
{
    char head[256];

    snprintf(head, sizeof(head),
             "HTTP/1.1 %s\r\nServer: oned-standin\r\nContent-Type: %s\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
             status, type, len);
    if (write_all(fd, head, strlen(head)) == 0)
        write_all(fd, body, len);
}

/* The value of header `name` (case-insensitive) in the header block, or NULL. */
static char *header(const char *head, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *l = p + 2;

        if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
            l += n + 1;
            l += strspn(l, " \t");
            return xstrndup(l, strcspn(l, "\r\n"));
        }
    }
    return NULL;
}

/* Reads one request; 0 with the body in `body`, -1 when it was answered
 * (an HTTP error) or the client went away. */
static int read_request(int fd, struct sbuf *req, struct sbuf *body)
{
    _cleanup_free_ char *len_s = NULL, *expect = NULL;
    char *end;
    size_t head_len;
    uint64_t len;

    while (!(end = strstr(req->buf, "\r\n\r\n"))) {
        if (req->len > MAX_HEADER || read_some(fd, req) < 0)
            return -1;
    }
    head_len = (size_t)(end - req->buf) + 4;
    *end = '\0';
    if (!starts_with(req->buf, "POST /RPC2 ")) {
        http_reply(fd, "404 Not Found", "text/plain", "only POST /RPC2\n", 16);
        return -1;
    }
    len_s = header(req->buf, "Content-Length");
    if (!len_s || parse_u64(len_s, MAX_BODY, &len) < 0) {
        http_reply(fd, "411 Length Required", "text/plain", "Content-Length\n", 15);
        return -1;
    }
    expect = header(req->buf, "Expect");
    if (expect && strcasecmp(expect, "100-continue") == 0)
        write_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    sbuf_add(body, req->buf + head_len, req->len - head_len);
    while (body->len < len)
        if (read_some(fd, body) < 0)
            return -1;
    sbuf_setlen(body, (size_t)len);
    return 0;
}

/* Keeps the connection open, unanswered: a child inherits it (and holds
 * nothing else of ours) and sleeps until we or our death kill it, while we
 * close our copy and serve the next callers. */
static void hang(int listen_fd)
{
    pid_t pid;

    if (nhanging == MAX_HANGING)
        return; /* closing it instead: tests never hang this often */
    pid = fork();
    if (pid == 0) {
        close(listen_fd);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;)
            pause();
    }
    if (pid > 0)
        hanging[nhanging++] = pid;
}

static void serve_connection(const char *dir, int conn, int listen_fd)
{
    struct sbuf req = SBUF_INIT, body = SBUF_INIT, out = SBUF_INIT;

    if (read_request(conn, &req, &body) == 0) {
        switch (handle_body(dir, body.buf, body.len, &out)) {
        case ANSWER:
            http_reply(conn, "200 OK", "text/xml", out.buf, out.len);
            break;
        case HANG:
            hang(listen_fd);
            break;
        case DROP:
            break;
        }
    }
    close(conn);
    sbuf_release(&req);
    sbuf_release(&body);
    sbuf_release(&out);
}

/* ---- the server ---- */

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void reap_children(void)
{
    size_t w = 0;

    for (size_t i = 0; i < nhanging; i++)
        if (waitpid(hanging[i], NULL, WNOHANG) == 0)
            hanging[w++] = hanging[i];
    nhanging = w;
}

static void kill_children(void)
{
    for (size_t i = 0; i < nhanging; i++) {
        kill(hanging[i], SIGKILL);
        waitpid(hanging[i], NULL, 0);
    }
    nhanging = 0;
}

static int listen_on(int port, int *bound)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    socklen_t alen = sizeof(a);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return fail_errno("socket");
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
        close(fd);
        return fail_errno("cannot listen on 127.0.0.1:%d", port);
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

static int write_number_file(const char *path, long n)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%ld\n", n);
    return write_atomic(path, buf, strlen(buf));
}

static void serve(const char *dir, int fd)
{
    while (!stopping) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int conn;

        reap_children();
        if (poll(&p, 1, 1000) <= 0)
            continue;
        conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (conn >= 0)
            serve_connection(dir, conn, fd);
    }
}

static NORETURN void usage(void)
{
    fputs("usage: oned-standin --state DIR --port PORT|0 [--pidfile F] [--portfile F]\n", stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "state", required_argument, NULL, 's' },
        { "port", required_argument, NULL, 'p' },
        { "pidfile", required_argument, NULL, 'P' },
        { "portfile", required_argument, NULL, 'f' },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL, *pidfile = NULL, *portfile = NULL;
    struct sigaction sa = { .sa_handler = on_signal };
    int port = -1, bound = 0, fd, c;
    int64_t num;

    log_setup("oned-standin", -1);
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            dir = optarg;
            break;
        case 'p':
            if (parse_i64(optarg, 0, 65535, &num) < 0)
                usage();
            port = (int)num;
            break;
        case 'P':
            pidfile = optarg;
            break;
        case 'f':
            portfile = optarg;
            break;
        default:
            usage();
        }
    }
    if (!dir || port < 0 || optind != argc)
        usage();
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (mkdir_p(dir, 0755) < 0 || (fd = listen_on(port, &bound)) < 0 ||
        (pidfile && write_number_file(pidfile, (long)getpid()) < 0) ||
        (portfile && write_number_file(portfile, bound) < 0))
        return report_failure();
    serve(dir, fd);
    kill_children();
    close(fd);
    if (pidfile)
        unlink(pidfile);
    return 0;
}
