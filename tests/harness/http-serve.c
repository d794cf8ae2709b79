/*
 * http-serve - a tiny static HTTP/1.1 file server for the end-to-end tests.
 *
 *   http-serve [--port N] [--portfile FILE] [--redirect FROM=TO]...
 *              [--no-length] DIR
 *
 * Listens on 127.0.0.1:N (default 0: a free port chosen by the kernel; its
 * number is written to FILE, atomically, once the server accepts
 * connections, so a test can wait for the file) and serves the regular files
 * under DIR to GET and HEAD:
 *   200 with Content-Length (none with --no-length: the body then ends when
 *       the connection closes, as a streaming server would send it);
 *   302 Location: TO for the path FROM (--redirect /old=/new, repeatable);
 *   404 for anything else (missing file, directory, "..");
 *   405 for other methods, 400 for a request that cannot be parsed.
 * One request per connection (Connection: close), one child process per
 * connection. Runs until killed; a request line is logged on stderr.
 */
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include "num.h"

#define MAX_REDIRECTS 16
#define REQ_MAX 8192

struct redirect {
    const char *from, *to;
};

static const char *root;
static bool no_length;
static struct redirect redirects[MAX_REDIRECTS];
static size_t n_redirects;

static void usage(void)
{
    fprintf(stderr, "usage: http-serve [--port N] [--portfile FILE] [--redirect FROM=TO]... "
                    "[--no-length] DIR\n");
    exit(2);
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void reply(int fd, const char *status, const char *extra, bool head)
{
    char *body = xasprintf("%s\n", status);
    char *msg = xasprintf("HTTP/1.1 %s\r\nServer: qcow2c-http-serve\r\nConnection: close\r\n"
                          "Content-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s",
                          status, strlen(body), extra ? extra : "", head ? "" : body);

    write_all(fd, msg, strlen(msg));
    free(msg);
    free(body);
}

/* The request line and headers, up to the blank line. */
static ssize_t read_request(int fd, char *buf, size_t size)
{
    size_t got = 0;

    while (got + 1 < size) {
        ssize_t n = read(fd, buf + got, size - 1 - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            return (ssize_t)got;
    }
    return -1;
}

/* "/a/b?x" -> "a/b"; NULL for anything that could leave DIR. */
static char *local_name(const char *target)
{
    size_t len = strcspn(target, "?#");
    char *name, *p;

    if (target[0] != '/')
        return NULL;
    name = xstrndup(target + 1, len - 1);
    for (p = name; *p;) {
        size_t seg = strcspn(p, "/");

        if ((seg == 2 && p[0] == '.' && p[1] == '.') || strchr(p, '%')) {
            free(name);
            return NULL;
        }
        p += seg;
        p += strspn(p, "/");
    }
    return name;
}

static void serve_file(int cfd, const char *target, bool head)
{
    char *name = local_name(target);
    char *path, *hdr;
    char buf[65536];
    struct stat st;
    int fd;

    if (!name || !*name) {
        free(name);
        reply(cfd, "404 Not Found", NULL, head);
        return;
    }
    path = xasprintf("%s/%s", root, name);
    free(name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        reply(cfd, "404 Not Found", NULL, head);
        return;
    }
    if (no_length)
        hdr = xasprintf("HTTP/1.1 200 OK\r\nServer: qcow2c-http-serve\r\nConnection: close\r\n"
                        "Content-Type: application/octet-stream\r\n\r\n");
    else
        hdr = xasprintf("HTTP/1.1 200 OK\r\nServer: qcow2c-http-serve\r\nConnection: close\r\n"
                        "Content-Type: application/octet-stream\r\nContent-Length: %lld\r\n\r\n",
                        (long long)st.st_size);
    if (write_all(cfd, hdr, strlen(hdr)) == 0 && !head) {
        for (;;) {
            ssize_t n = read(fd, buf, sizeof(buf));

            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0 || write_all(cfd, buf, (size_t)n) < 0)
                break;
        }
    }
    free(hdr);
    close(fd);
}

static void handle(int cfd)
{
    char req[REQ_MAX];
    char method[16], target[4096];
    bool head;

    if (read_request(cfd, req, sizeof(req)) < 0)
        return;
    if (sscanf(req, "%15s %4095s HTTP/1.%*c", method, target) != 2) {
        reply(cfd, "400 Bad Request", NULL, false);
        return;
    }
    fprintf(stderr, "http-serve: %s %s\n", method, target);
    head = streq(method, "HEAD");
    if (!head && !streq(method, "GET")) {
        reply(cfd, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", false);
        return;
    }
    for (size_t i = 0; i < n_redirects; i++) {
        size_t len = strcspn(target, "?#");

        if (strlen(redirects[i].from) == len && !strncmp(target, redirects[i].from, len)) {
            char *loc = xasprintf("Location: %s\r\n", redirects[i].to);

            reply(cfd, "302 Found", loc, head);
            free(loc);
            return;
        }
    }
    serve_file(cfd, target, head);
}

static void write_portfile(const char *file, unsigned port)
{
    char *tmp = xasprintf("%s.tmp", file);
    FILE *f = fopen(tmp, "w");

    if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 || rename(tmp, file) < 0) {
        fprintf(stderr, "http-serve: cannot write %s: %s\n", file, strerror(errno));
        exit(1);
    }
    free(tmp);
}

int main(int argc, char **argv)
{
    const char *portfile = NULL;
    struct sockaddr_in addr = { .sin_family = AF_INET };
    socklen_t alen = sizeof(addr);
    uint64_t port = 0;
    struct sigaction sa = { .sa_handler = SIG_IGN, .sa_flags = SA_NOCLDWAIT };
    int one = 1, lfd;
    int i;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (streq(argv[i], "--port") && i + 1 < argc) {
            if (parse_u64(argv[++i], 65535, &port) < 0)
                usage();
        } else if (streq(argv[i], "--portfile") && i + 1 < argc) {
            portfile = argv[++i];
        } else if (streq(argv[i], "--redirect") && i + 1 < argc) {
            char *eq = strchr(argv[++i], '=');

            if (!eq || argv[i][0] != '/' || n_redirects == MAX_REDIRECTS)
                usage();
            *eq = '\0';
            redirects[n_redirects].from = argv[i];
            redirects[n_redirects++].to = eq + 1;
        } else if (streq(argv[i], "--no-length")) {
            no_length = true;
        } else {
            usage();
        }
    }
    if (i != argc - 1)
        usage();
    root = argv[i];

    /* Children reap themselves; a client gone mid-body must not kill us. */
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)port);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 64) < 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) {
        fprintf(stderr, "http-serve: cannot listen on 127.0.0.1:%llu: %s\n",
                (unsigned long long)port, strerror(errno));
        return 1;
    }
    if (portfile)
        write_portfile(portfile, ntohs(addr.sin_port));
    for (;;) {
        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        pid_t pid;

        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fprintf(stderr, "http-serve: accept: %s\n", strerror(errno));
            return 1;
        }
        pid = fork();
        if (pid == 0) {
            close(lfd);
            handle(cfd);
            /* Let the client read everything before the close. */
            shutdown(cfd, SHUT_WR);
            close(cfd);
            _exit(0);
        }
        if (pid < 0)
            handle(cfd);
        close(cfd);
    }
}
