/* ssh.c - one-shot ssh commands and per-action ssh sessions; see ssh.h. */
#include "ssh.h"

#include <poll.h>

#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "quote.h"

struct rsh {
    char *host;
    struct child ch;
    char mark[40]; /* random per session: command output cannot forge it */
    bool dead;
};

/* A remote command line larger than this would not fit a pipe buffer, and
 * could block us while ssh is stuck. Real lines are a few hundred bytes. */
#define MAX_LINE (32u << 10)
#define CLOSE_GRACE_MS 5000

bool ssh_host_valid(const char *host)
{
    if (str_empty(host) || host[0] == '-' || strlen(host) > 253)
        return false;
    return host[strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "0123456789.-_")] == '\0';
}

static void ssh_base(struct strvec *a)
{
    strvec_push(a, config_str("SSH"));
    strvec_pushl(a, "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", NULL);
    strvec_pushf(a, "-oConnectTimeout=%u", config_uint("SSH_CONNECT_TIMEOUT"));
    strvec_pushf(a, "-oServerAliveInterval=%u", config_uint("SSH_ALIVE_INTERVAL"));
    strvec_pushf(a, "-oServerAliveCountMax=%u", config_uint("SSH_ALIVE_COUNT"));
    config_words("SSH_OPTIONS", a);
}

int ssh_cmd(struct cmd *c, const char *host, const char *const *remote_argv)
{
    struct sbuf line = SBUF_INIT;

    if (!ssh_host_valid(host))
        return fail("'%s' is not a valid host name", host);
    ssh_base(&c->args);
    strvec_pushl(&c->args, "--", host, NULL);
    sq_quote_argv(&line, remote_argv);
    strvec_push(&c->args, line.buf);
    sbuf_release(&line);
    return 0;
}

const char *rsh_host(const struct rsh *r)
{
    return r->host;
}

static int make_mark(char *buf, size_t size)
{
    unsigned char rnd[12];
    _cleanup_close_ int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

    if (fd < 0 || read(fd, rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd))
        return fail_errno("cannot read /dev/urandom");
    snprintf(buf, size, "@qcow2c-");
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%02x", rnd[i]);
    return 0;
}

static void kill_session(struct rsh *r)
{
    bool to;

    if (r->dead)
        return;
    r->dead = true;
    closep(&r->ch.in);
    closep(&r->ch.out);
    closep(&r->ch.err);
    child_kill_group(r->ch.pid);
    child_wait(r->ch.pid, monotonic_ms() + CLOSE_GRACE_MS, &to);
}

/* Finds "\n<mark> <digits>\n" ending the buffer; cuts it off and returns the
 * status, or -1 when it is not (yet) there. */
static int take_status_mark(struct sbuf *out, const char *mark)
{
    size_t ml = strlen(mark);
    const char *p;
    size_t pos;
    int st = 0;

    if (out->len < ml + 3 || out->buf[out->len - 1] != '\n')
        return -1;
    p = out->buf + out->len - 2;
    while (p > out->buf && *p >= '0' && *p <= '9')
        p--;
    if (*p != ' ' || p == out->buf + out->len - 2)
        return -1;
    pos = (size_t)(p - out->buf);
    if (pos < ml + 1 || memcmp(out->buf + pos - ml, mark, ml) || out->buf[pos - ml - 1] != '\n')
        return -1;
    for (p++; *p != '\n'; p++)
        st = st * 10 + (*p - '0');
    sbuf_setlen(out, pos - ml - 1);
    return st;
}

/* Finds "\n<mark>\n" ending the buffer and cuts it off. */
static bool take_end_mark(struct sbuf *err, const char *mark)
{
    size_t ml = strlen(mark);

    if (err->len < ml + 2 || err->buf[err->len - 1] != '\n')
        return false;
    if (memcmp(err->buf + err->len - ml - 1, mark, ml) || err->buf[err->len - ml - 2] != '\n')
        return false;
    sbuf_setlen(err, err->len - ml - 2);
    return true;
}

static int write_all(int fd, const char *s, size_t len)
{
    while (len) {
        ssize_t n = write(fd, s, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

enum exchange { EX_DONE, EX_TIMEOUT, EX_LOST, EX_TOO_MUCH };

/* Sends one line and reads both streams until both markers arrive. */
/*
 * When the session dies, ssh's own reason ("Connection refused", "Host key
 * verification failed") is still on its way through the stderr pipe: stdout
 * may close first, or the write may hit a closed pipe before ssh has said
 * anything.  Read stderr to its end, briefly, so the reason is not lost.
 */
static enum exchange lost(struct rsh *r, struct cmd *c)
{
    long long deadline = monotonic_ms() + 2000;
    char buf[4096];

    for (;;) {
        struct pollfd p = { .fd = r->ch.err, .events = POLLIN };
        long long left = deadline - monotonic_ms();
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        n = read(r->ch.err, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (c->err.len < (64u << 10))
            sbuf_add(&c->err, buf, (size_t)n);
    }
    return EX_LOST;
}

static enum exchange exchange(struct rsh *r, const char *line, struct cmd *c, unsigned timeout)
{
    long long deadline = monotonic_ms() + (long long)timeout * 1000;
    size_t out_max = c->out_max ? c->out_max : (4u << 20);
    size_t err_max = c->err_max ? c->err_max : (16u << 10);
    bool out_done = false, err_done = false;
    char buf[65536];

    if (write_all(r->ch.in, line, strlen(line)) < 0)
        return lost(r, c);
    while (!out_done || !err_done) {
        struct pollfd p[2] = { { .fd = r->ch.out, .events = POLLIN },
                               { .fd = r->ch.err, .events = POLLIN } };
        long long left = deadline - monotonic_ms();
        int rc;

        if (left <= 0)
            return EX_TIMEOUT;
        if (out_done)
            p[0].fd = -1;
        if (err_done)
            p[1].fd = -1;
        rc = poll(p, 2, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return lost(r, c);
        for (int i = 0; i < 2; i++) {
            struct sbuf *sb = i ? &c->err : &c->out;
            ssize_t n;

            if (!p[i].revents)
                continue;
            n = read(p[i].fd, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return lost(r, c);
            sbuf_add(sb, buf, (size_t)n);
            if (i == 0) {
                int st = take_status_mark(sb, r->mark);

                if (st >= 0) {
                    c->status = st;
                    out_done = true;
                } else if (sb->len > out_max + 64) {
                    return EX_TOO_MUCH;
                }
            } else {
                err_done = take_end_mark(sb, r->mark);
                /* keep only the tail, but never cut into a marker being read */
                if (!err_done && sb->len > 2 * err_max)
                    sbuf_remove_head(sb, sb->len - err_max);
            }
        }
    }
    return EX_DONE;
}

static int run_line(struct rsh *r, struct cmd *c, const char *line, const char *what,
                    unsigned timeout)
{
    enum exchange ex;
    struct cmd ssh_err = CMD_INIT;

    c->status = -1;
    c->timed_out = false;
    sbuf_reset(&c->out);
    sbuf_reset(&c->err);
    if (r->dead)
        return fail("the ssh connection to %s was lost earlier", r->host);
    ex = exchange(r, line, c, timeout);
    if (ex == EX_DONE)
        return 0;
    /* What ssh itself said is in the stderr buffer, after the command's. */
    sbuf_add(&ssh_err.err, c->err.buf, c->err.len);
    sbuf_rtrim(&ssh_err.err);
    kill_session(r);
    switch (ex) {
    case EX_TIMEOUT:
        c->timed_out = true;
        fail("'%s' on %s did not finish within %u s; the connection was closed", what,
             r->host, timeout);
        break;
    case EX_TOO_MUCH:
        fail("'%s' on %s printed too much output", what, r->host);
        break;
    default: {
        const char *e = ssh_err.err.buf;
        size_t elen = ssh_err.err.len;

        if (elen > 400) {
            e += elen - 400;
            elen = 400;
        }
        fail("lost the ssh connection to %s while running '%s'%s%.*s", r->host, what,
             elen ? ": " : "", (int)elen, e);
        break;
    }
    }
    cmd_release(&ssh_err);
    return -1;
}

struct rsh *rsh_open(const char *host)
{
    struct rsh *r;
    struct strvec argv = STRVEC_INIT;
    struct cmd probe = CMD_INIT;
    char line[256];

    if (!ssh_host_valid(host)) {
        fail("'%s' is not a valid host name", host);
        return NULL;
    }
    r = xcalloc(1, sizeof(*r));
    r->host = xstrdup(host);
    if (make_mark(r->mark, sizeof(r->mark)) < 0)
        goto fail;
    ssh_base(&argv);
    strvec_pushl(&argv, "--", host, "exec sh", NULL);
    if (log_debug_enabled()) {
        struct sbuf s = SBUF_INIT;

        cmd_render(&s, argv.v, 1000);
        log_debug("session %s", s.buf);
        sbuf_release(&s);
    }
    if (child_spawn(&r->ch, argv.v, NULL, NULL, -1, true, -1) < 0)
        goto fail;
    /* The first exchange checks the connection and swallows anything the
     * remote shell's start-up files print. */
    snprintf(line, sizeof(line),
             "export LC_ALL=C LANG=C; printf '\\n%s %%d\\n' 0; printf '\\n%s\\n' >&2\n",
             r->mark, r->mark);
    if (run_line(r, &probe, line, "connect", config_uint("SSH_CONNECT_TIMEOUT") + 30) < 0) {
        fail_reset();
        sbuf_rtrim(&probe.err);
        if (probe.timed_out || !probe.err.len)
            fail("cannot reach host %s over ssh: no answer within %u s", host,
                 config_uint("SSH_CONNECT_TIMEOUT") + 30);
        else
            fail("cannot reach host %s over ssh: %s", host, probe.err.buf);
        goto fail;
    }
    strvec_clear(&argv);
    cmd_release(&probe);
    return r;
fail:
    strvec_clear(&argv);
    cmd_release(&probe);
    if (r->ch.pid > 0)
        kill_session(r);
    free(r->host);
    free(r);
    return NULL;
}

int rsh_run_status(struct rsh *r, struct cmd *c)
{
    struct sbuf line = SBUF_INIT, what = SBUF_INIT;
    struct strvec full = STRVEC_INIT;
    unsigned timeout = c->timeout_s ? c->timeout_s : run_default_timeout;
    int rc;

    if (c->in || c->in_fd >= 0 || c->out_fd >= 0)
        die("internal error: rsh_run does not forward streams");
    /* The host bounds the command itself too: when this action is killed,
     * the remote shell only notices after the running command ends, and an
     * orphan must not run unbounded. Our own limit strikes first. */
    strvec_pushl(&full, "timeout", "-k", "10", NULL);
    strvec_pushf(&full, "%u", timeout + 5);
    /* Environment for a remote command travels as env(1) words. */
    if (c->env.nr) {
        strvec_push(&full, "env");
        strvec_pushv(&full, c->env.v);
    }
    strvec_pushv(&full, c->args.v);
    cmd_render(&what, c->args.v, 200);
    log_debug("on %s: %s", r->host, what.buf);
    if (c->dir) {
        sbuf_adds(&line, "cd ");
        sq_quote(&line, c->dir);
        sbuf_adds(&line, " && ");
    }
    sq_quote_argv(&line, full.v);
    sbuf_addf(&line, " </dev/null; printf '\\n%s %%d\\n' \"$?\"; printf '\\n%s\\n' >&2\n",
              r->mark, r->mark);
    if (line.len > MAX_LINE) {
        rc = fail("the command line for '%s' is too long", what.buf);
    } else {
        rc = run_line(r, c, line.buf, c->what ? c->what : what.buf, timeout);
        run_children_started++; /* one process on the host, counted alike */
    }
    sbuf_release(&line);
    sbuf_release(&what);
    strvec_clear(&full);
    return rc;
}

int rsh_run(struct rsh *r, struct cmd *c)
{
    if (rsh_run_status(r, c) < 0)
        return -1;
    if (c->status == 0)
        return 0;
    cmd_fail(c);
    return fail_context("on %s", r->host);
}

void rsh_close(struct rsh *r)
{
    bool to;

    if (!r)
        return;
    if (!r->dead) {
        if (write_all(r->ch.in, "exit 0\n", 7) < 0) {
            /* the shell is already gone; waiting below still reaps ssh */
        }
        closep(&r->ch.in);
        closep(&r->ch.out);
        closep(&r->ch.err);
        child_wait(r->ch.pid, monotonic_ms() + CLOSE_GRACE_MS, &to);
    }
    free(r->host);
    free(r);
}
