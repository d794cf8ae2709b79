/* test_http.c - http_fetch and http_content_length against a small
 * HTTP/1.1 server forked by each test on 127.0.0.1, and an https server
 * (openssl s_server) with a certificate nobody signed. */
#include "testlib.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "run.h"
#include "stream.h"

#define BODY_LEN (3u * 1024u * 1024u + 7u)
#define STALL_SENT 1000u

static unsigned char *body;
static pid_t server_pid = -1;
static int server_port;
static char *server_log; /* one request line per request, written by the server */

/* ---- the server ---- */

static void send_all(int fd, const void *p, size_t len)
{
    const char *c = p;

    while (len) {
        ssize_t n = write(fd, c, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the client went away (max_bytes, a test that stops early) */
        c += n;
        len -= (size_t)n;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

static void send_headers(int fd, const char *status, const char *extra)
{
    char *h = xasprintf("HTTP/1.1 %s\r\nServer: qcow2c-test\r\nConnection: close\r\n%s\r\n",
                        status, extra ? extra : "");

    send_str(fd, h);
    free(h);
}

static void send_body_with_length(int fd, bool head, size_t len)
{
    char *cl = xasprintf("Content-Length: %zu\r\nContent-Type: application/octet-stream\r\n",
                         len);

    send_headers(fd, "200 OK", cl);
    if (!head)
        send_all(fd, body, len);
    free(cl);
}

static void send_chunked(int fd, bool head)
{
    size_t off = 0;

    send_headers(fd, "200 OK", "Transfer-Encoding: chunked\r\n");
    if (head)
        return;
    for (size_t n = 1; off < BODY_LEN; n = n * 3 + 1) {
        char *size;

        if (n > 100000)
            n = 7;
        if (n > BODY_LEN - off)
            n = BODY_LEN - off;
        size = xasprintf("%zx\r\n", n);
        send_str(fd, size);
        send_all(fd, body + off, n);
        send_str(fd, "\r\n");
        off += n;
        free(size);
    }
    send_str(fd, "0\r\n\r\n");
}

static void send_redirect(int fd, const char *status, const char *to)
{
    char *loc = xasprintf("Location: %s\r\nContent-Length: 0\r\n", to);

    send_headers(fd, status, loc);
    free(loc);
}

static void send_error(int fd, const char *status)
{
    static const char page[] = "<html><body>no such image</body></html>";
    char *extra = xasprintf("Content-Length: %zu\r\nContent-Type: text/html\r\n",
                            sizeof(page) - 1);

    send_headers(fd, status, extra);
    send_str(fd, page);
    free(extra);
}

static void log_request(const char *method, const char *path)
{
    int fd = open(server_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    char *line = xasprintf("%s %s\n", method, path);

    send_str(fd, line);
    close(fd);
    free(line);
}

/* Reads the request head; "METHOD PATH" into the buffers. */
static bool read_request(int fd, char *method, size_t mlen, char *path, size_t plen)
{
    struct sbuf req = SBUF_INIT;
    char buf[1024];
    char *sp, *sp2;
    bool ok = false;

    while (!strstr(req.buf, "\r\n\r\n") && req.len < 16384) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n <= 0)
            goto out;
        sbuf_add(&req, buf, (size_t)n);
    }
    sp = strchr(req.buf, ' ');
    sp2 = sp ? strchr(sp + 1, ' ') : NULL;
    if (sp && sp2 && (size_t)(sp - req.buf) < mlen && (size_t)(sp2 - sp - 1) < plen) {
        memcpy(method, req.buf, (size_t)(sp - req.buf));
        method[sp - req.buf] = '\0';
        memcpy(path, sp + 1, (size_t)(sp2 - sp - 1));
        path[sp2 - sp - 1] = '\0';
        ok = true;
    }
out:
    sbuf_release(&req);
    return ok;
}

static void handle(int fd)
{
    char method[16], path[512];
    bool head;

    if (!read_request(fd, method, sizeof(method), path, sizeof(path)))
        return;
    log_request(method, path);
    head = streq(method, "HEAD");
    if (streq(path, "/data") || streq(path, "/dir/image.raw")) {
        send_body_with_length(fd, head, BODY_LEN);
    } else if (streq(path, "/nolen")) {
        send_headers(fd, "200 OK", NULL);
        if (!head)
            send_all(fd, body, BODY_LEN);
    } else if (streq(path, "/chunked")) {
        send_chunked(fd, head);
    } else if (streq(path, "/redirect")) {
        send_redirect(fd, "302 Found", "/dir/image.raw");
    } else if (streq(path, "/redirect-chain")) {
        send_redirect(fd, "301 Moved Permanently", "/redirect");
    } else if (streq(path, "/loop")) {
        send_redirect(fd, "302 Found", "/loop");
    } else if (streq(path, "/to-file")) {
        send_redirect(fd, "302 Found", "file:///etc/passwd");
    } else if (streq(path, "/get-only")) {
        if (head)
            send_error(fd, "405 Method Not Allowed");
        else
            send_body_with_length(fd, false, 12345);
    } else if (streq(path, "/encoded")) {
        static const unsigned char gz_abc[] = { 0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3, 0x4b,
                                                0x4c, 0x4a, 0x06, 0, 0xc2, 0x41, 0x24, 0x35,
                                                3, 0, 0, 0 };
        char *extra = xasprintf("Content-Encoding: gzip\r\nContent-Length: %zu\r\n",
                                sizeof(gz_abc));

        send_headers(fd, "200 OK", extra);
        send_all(fd, gz_abc, sizeof(gz_abc));
        free(extra);
    } else if (streq(path, "/short")) {
        char *cl = xasprintf("Content-Length: %u\r\n", BODY_LEN);

        send_headers(fd, "200 OK", cl);
        send_all(fd, body, BODY_LEN / 2);
        free(cl);
    } else if (streq(path, "/stall")) {
        char *cl = xasprintf("Content-Length: %u\r\n", BODY_LEN);

        send_headers(fd, "200 OK", cl);
        send_all(fd, body, STALL_SENT);
        free(cl);
        pause(); /* until the test kills the server */
    } else if (streq(path, "/silent")) {
        pause();
    } else if (streq(path, "/broken")) {
        send_error(fd, "500 Internal Server Error");
    } else {
        send_error(fd, "404 Not Found");
    }
}

static void serve(int lfd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);

        if (fd < 0)
            continue;
        handle(fd);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
}

static int listen_local(int *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s", strerror(errno));
    cr_assert_eq(listen(fd, 16), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void start_server(void)
{
    char *dir;
    int lfd;

    test_config("COPY_TIMEOUT=3\nHTTP_CONNECT_TIMEOUT=2");
    /* libcurl honours http_proxy & co., as the driver should; not here. */
    setenv("no_proxy", "*", 1);
    body = xmalloc(BODY_LEN);
    for (size_t i = 0; i < BODY_LEN; i++)
        body[i] = (unsigned char)((i * 2654435761u) >> 13);
    dir = test_tmpdir();
    server_log = xasprintf("%s/requests", dir);
    free(dir);
    lfd = listen_local(&server_port);
    server_pid = fork();
    cr_assert_geq(server_pid, 0);
    if (server_pid == 0)
        serve(lfd);
    close(lfd);
}

/* test_config()'s directory, with the file in it. */
static void remove_config(void)
{
    char *conf = config_path() ? xstrdup(config_path()) : NULL;

    if (!conf)
        return;
    unlink(conf);
    *strrchr(conf, '/') = '\0';
    rmdir(conf);
    free(conf);
}

static void stop_server(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
    free(body);
    unlink(server_log);
    *strrchr(server_log, '/') = '\0';
    rmdir(server_log);
    free(server_log);
    remove_config();
}

TestSuite(http, .init = start_server, .fini = stop_server, .timeout = 60);

/* ---- helpers ---- */

static char *url(const char *path)
{
    return xasprintf("http://127.0.0.1:%d%s", server_port, path);
}

static char *requests(void)
{
    struct sbuf log = SBUF_INIT;

    sbuf_read_file(&log, server_log, 0);
    return sbuf_detach(&log);
}

/* Downloads `path` into a head sink big enough for the whole body. */
static int fetch(const char *path, uint64_t max, struct sink **out)
{
    char *u = url(path);
    int rc;

    *out = head_sink_new(BODY_LEN + 1);
    fail_reset();
    rc = http_fetch(u, *out, max);
    free(u);
    return rc;
}

static void check_body(struct sink *s, size_t len)
{
    size_t got;
    const void *data = head_sink_data(s, &got);

    cr_assert_eq(got, len, "%zu bytes downloaded, %zu expected", got, len);
    cr_assert(memcmp(data, body, len) == 0, "the downloaded data differs");
    cr_assert_eq(s->bytes, len);
}

static void check_reason(const char *path, const char *tail)
{
    char *expect = xasprintf("cannot download http://127.0.0.1:%d%s: %s", server_port, path,
                             tail);

    cr_assert_str_eq(fail_reason(), expect);
    free(expect);
}

/* ---- downloads ---- */

Test(http, with_content_length)
{
    struct sink *s;
    char *log;

    cr_assert_eq(fetch("/data", 0, &s), 0, "%s", fail_reason());
    check_body(s, BODY_LEN);
    sink_free(s);
    log = requests();
    cr_assert_str_eq(log, "GET /data\n");
    free(log);
}

Test(http, without_content_length)
{
    struct sink *s;

    cr_assert_eq(fetch("/nolen", 0, &s), 0, "%s", fail_reason());
    check_body(s, BODY_LEN);
    sink_free(s);
}

Test(http, chunked)
{
    struct sink *s;

    cr_assert_eq(fetch("/chunked", 0, &s), 0, "%s", fail_reason());
    check_body(s, BODY_LEN);
    sink_free(s);
}

Test(http, follows_redirects)
{
    struct sink *s;
    char *log;

    cr_assert_eq(fetch("/redirect-chain", 0, &s), 0, "%s", fail_reason());
    check_body(s, BODY_LEN);
    sink_free(s);
    log = requests();
    cr_assert_str_eq(log, "GET /redirect-chain\nGET /redirect\nGET /dir/image.raw\n");
    free(log);
}

Test(http, redirect_loop_fails)
{
    struct sink *s;

    cr_assert_eq(fetch("/loop", 0, &s), -1);
    cr_assert(starts_with(fail_reason(), "cannot download http://127.0.0.1:"), "%s",
              fail_reason());
    cr_assert(strcasestr(fail_reason(), "redirect"), "%s", fail_reason());
    sink_free(s);
}

Test(http, redirect_to_another_scheme_fails)
{
    struct sink *s;

    cr_assert_eq(fetch("/to-file", 0, &s), -1);
    cr_assert(starts_with(fail_reason(), "cannot download "), "%s", fail_reason());
    cr_assert_eq(s->bytes, 0);
    sink_free(s);
}

Test(http, not_found_is_http_404)
{
    struct sink *s;

    cr_assert_eq(fetch("/missing", 0, &s), -1);
    check_reason("/missing", "HTTP 404");
    cr_assert_eq(s->bytes, 0, "the error page must not reach the sink");
    sink_free(s);
}

Test(http, server_error_is_http_500)
{
    struct sink *s;

    cr_assert_eq(fetch("/broken", 0, &s), -1);
    check_reason("/broken", "HTTP 500");
    sink_free(s);
}

Test(http, body_cut_short_fails)
{
    struct sink *s;

    cr_assert_eq(fetch("/short", 0, &s), -1);
    cr_assert(starts_with(fail_reason(), "cannot download http://127.0.0.1:"), "%s",
              fail_reason());
    sink_free(s);
}

/* COPY_TIMEOUT=3 in this suite's qcow2c.conf. */
Test(http, stalled_server_times_out)
{
    struct sink *s;
    long long start = monotonic_ms(), took;

    cr_assert_eq(fetch("/stall", 0, &s), -1);
    took = monotonic_ms() - start;
    cr_assert(took >= 2500 && took < 10000, "took %lld ms", took);
    cr_assert(strstr(fail_reason(), "timed out"), "%s", fail_reason());
    cr_assert_eq(s->bytes, STALL_SENT);
    sink_free(s);
}

Test(http, connection_refused)
{
    int port;
    int fd = listen_local(&port);
    char *u = xasprintf("http://127.0.0.1:%d/x", port);
    char *prefix = xasprintf("cannot download %s: ", u);
    struct sink *s = null_sink_new();

    close(fd); /* nobody listens there any more */
    cr_assert_eq(http_fetch(u, s, 0), -1);
    cr_assert(starts_with(fail_reason(), prefix), "%s", fail_reason());
    cr_assert(strstr(fail_reason(), "Couldn't connect to server"), "%s", fail_reason());
    sink_free(s);
    free(prefix);
    free(u);
}

Test(http, max_bytes_stops_early)
{
    struct sink *s;

    cr_assert_eq(fetch("/data", 1000, &s), 0, "%s", fail_reason());
    check_body(s, 1000);
    sink_free(s);

    cr_assert_eq(fetch("/data", BODY_LEN + 100, &s), 0, "%s", fail_reason());
    check_body(s, BODY_LEN);
    sink_free(s);
}

/* The head of a server that then stalls: no wait for the timeout. */
Test(http, max_bytes_does_not_wait_for_the_rest)
{
    struct sink *s;
    long long start = monotonic_ms();

    cr_assert_eq(fetch("/stall", STALL_SENT / 2, &s), 0, "%s", fail_reason());
    cr_assert_lt(monotonic_ms() - start, 2000);
    check_body(s, STALL_SENT / 2);
    sink_free(s);
}

/* The hash must be of the file as served: no Content-Encoding decoding. */
Test(http, content_encoding_is_not_decoded)
{
    struct sink *s;
    const unsigned char *data;
    size_t len;

    cr_assert_eq(fetch("/encoded", 0, &s), 0, "%s", fail_reason());
    data = head_sink_data(s, &len);
    cr_assert_eq(len, 23);
    cr_assert(data[0] == 0x1f && data[1] == 0x8b);
    sink_free(s);
}

Test(http, sink_failure_is_the_reason)
{
    char *u = url("/data");
    int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
    struct sink *s = file_sink_new(fd, "/dev/full", false);

    cr_assert_eq(http_fetch(u, s, 0), -1);
    cr_assert(starts_with(fail_reason(), "no space left on the device for '/dev/full'"), "%s",
              fail_reason());
    sink_free(s);
    close(fd);
    free(u);
}

Test(http, credentials_stay_out_of_messages)
{
    char *u = xasprintf("http://admin:s3cret@127.0.0.1:%d/missing", server_port);
    struct sink *s = null_sink_new();

    cr_assert_eq(http_fetch(u, s, 0), -1);
    check_reason("/missing", "HTTP 404");
    sink_free(s);
    free(u);
}

Test(http, only_http_urls)
{
    struct sink *s = null_sink_new();
    uint64_t len;

    cr_assert_eq(http_fetch("file:///etc/passwd", s, 0), -1);
    cr_assert(strstr(fail_reason(), "is not an http:// or https:// URL"), "%s", fail_reason());
    fail_reset();
    cr_assert_eq(http_content_length("/var/tmp/image", &len), -1);
    cr_assert(strstr(fail_reason(), "is not an http:// or https:// URL"), "%s", fail_reason());
    sink_free(s);
}

/* ---- Content-Length ---- */

Test(http, content_length_with_head)
{
    char *u = url("/redirect");
    uint64_t len = 0;
    char *log;

    cr_assert_eq(http_content_length(u, &len), 0, "%s", fail_reason());
    cr_assert_eq(len, BODY_LEN);
    log = requests();
    cr_assert_str_eq(log, "HEAD /redirect\nHEAD /dir/image.raw\n");
    free(log);
    free(u);
}

Test(http, content_length_when_head_is_refused)
{
    char *u = url("/get-only");
    uint64_t len = 0;
    char *log;

    cr_assert_eq(http_content_length(u, &len), 0, "%s", fail_reason());
    cr_assert_eq(len, 12345);
    log = requests();
    cr_assert_str_eq(log, "HEAD /get-only\nGET /get-only\n");
    free(log);
    free(u);
}

Test(http, content_length_missing)
{
    char *u = url("/chunked");
    char *expect = xasprintf("cannot get the size of %s: the server sends no Content-Length", u);
    uint64_t len = 7;

    cr_assert_eq(http_content_length(u, &len), -1);
    cr_assert_str_eq(fail_reason(), expect);
    cr_assert_eq(len, 7);
    free(expect);
    free(u);
}

Test(http, content_length_not_found)
{
    char *u = url("/missing");
    char *expect = xasprintf("cannot get the size of %s: HTTP 404", u);
    uint64_t len;

    cr_assert_eq(http_content_length(u, &len), -1);
    cr_assert_str_eq(fail_reason(), expect);
    free(expect);
    free(u);
}

Test(http, content_length_bounded_by_timeout)
{
    char *u = url("/silent");
    uint64_t len;
    long long start = monotonic_ms();

    cr_assert_eq(http_content_length(u, &len), -1);
    cr_assert_lt(monotonic_ms() - start, 10000);
    cr_assert(strstr(fail_reason(), "timed out"), "%s", fail_reason());
    free(u);
}

/* ---- https: the certificate is checked ---- */

static void make_cert(const char *dir, char **cert, char **key)
{
    struct cmd c = CMD_INIT;

    *cert = xasprintf("%s/cert.pem", dir);
    *key = xasprintf("%s/key.pem", dir);
    strvec_pushl(&c.args, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                 "-keyout", *key, "-out", *cert, "-subj", "/CN=127.0.0.1", "-days", "1",
                 "-addext", "subjectAltName=IP:127.0.0.1", NULL);
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    cmd_release(&c);
}

static bool can_connect(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

    close(fd);
    return ok;
}

Test(http, https_rejects_an_unknown_certificate)
{
    char *dir = test_tmpdir();
    char *cert, *key, *port_s, *u;
    int port, lfd = listen_local(&port);
    struct child ch;
    struct sink *s = null_sink_new();
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    bool timed_out;

    make_cert(dir, &cert, &key);
    close(lfd); /* a free port for s_server */
    port_s = xasprintf("127.0.0.1:%d", port);
    {
        const char *argv[] = { "openssl", "s_server", "-quiet", "-www", "-accept", port_s,
                               "-cert", cert, "-key", key, NULL };
        const char *env[] = { NULL };

        cr_assert_eq(child_spawn(&ch, argv, env, NULL, -1, false, devnull), 0, "%s",
                     fail_reason());
    }
    for (int i = 0; i < 100 && !can_connect(port); i++)
        usleep(50 * 1000);
    u = xasprintf("https://%s/", port_s);
    cr_assert_eq(http_fetch(u, s, 0), -1, "a self-signed certificate was accepted");
    cr_assert(strstr(fail_reason(), "certificate"), "%s", fail_reason());
    cr_assert_eq(s->bytes, 0);
    child_kill_group(ch.pid);
    child_wait(ch.pid, 0, &timed_out);
    close(ch.err);
    close(devnull);
    unlink(cert);
    unlink(key);
    rmdir(dir);
    sink_free(s);
    free(u);
    free(port_s);
    free(cert);
    free(key);
    free(dir);
}
