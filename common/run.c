/* run.c - child processes without a shell; see run.h for the contract. */
#include "run.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "cleanup.h"
#include "log.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

unsigned run_default_timeout = 3600;
unsigned long run_children_started;

extern char **environ;

#define DEFAULT_OUT_MAX (4u << 20)
#define DEFAULT_ERR_MAX (16u << 10)
/* After the child exits, how long its pipes may stay open (held by a
 * grandchild that daemonised) before we stop reading them. */
#define DRAIN_GRACE_MS 2000
#define TERM_GRACE_MS 5000

long long monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool needs_quotes(const char *s)
{
    if (!*s)
        return true;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                    "_-./:=,+@%", *s))
            return true;
    return false;
}

void cmd_render(struct sbuf *out, const char *const *argv, size_t max)
{
    size_t start = out->len;

    for (; *argv; argv++) {
        if (out->len > start)
            sbuf_addch(out, ' ');
        if (needs_quotes(*argv)) {
            sbuf_addch(out, '\'');
            sbuf_add_oneline(out, *argv, strlen(*argv));
            sbuf_addch(out, '\'');
        } else {
            sbuf_adds(out, *argv);
        }
        if (out->len - start > max) {
            sbuf_setlen(out, start + max);
            sbuf_adds(out, "...");
            return;
        }
    }
}

/* The environment every child starts from: enough to find programs and to
 * make their messages parseable, nothing that changes their behaviour. */
static void build_env(struct strvec *env, const char *const *extra)
{
    static const char *const pass[] = { "PATH", "HOME", "USER", "LOGNAME", "TMPDIR",
                                        "SSH_AUTH_SOCK" };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(pass); i++) {
        const char *v = getenv(pass[i]);

        if (v)
            strvec_pushf(env, "%s=%s", pass[i], v);
        else if (streq(pass[i], "PATH"))
            strvec_push(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    }
    strvec_push(env, "LC_ALL=C");
    strvec_push(env, "LANG=C");
    if (extra)
        strvec_pushv(env, extra);
}

static NORETURN void child_exec(const char *const *argv, const char *const *env, const char *dir,
                                int in, int out, int err, int report)
{
    static const int sigs[] = { SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGALRM };
    sigset_t none;
    size_t i;
    int e;

    setpgid(0, 0);
    for (i = 0; i < ARRAY_SIZE(sigs); i++)
        signal(sigs[i], SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        goto fail;
    if (dir && chdir(dir) < 0)
        goto fail;
    /* Everything above 2 is closed at exec, including the report pipe, whose
     * closing tells the parent that exec succeeded. */
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        for (int fd = 3; fd < 1024; fd++)
            if (fd != report)
                close(fd);
    }
    execvpe(argv[0], (char *const *)argv, (char *const *)env);
fail:
    e = errno;
    if (write(report, &e, sizeof(e)) < 0) {
        /* nothing more can be done in the child */
    }
    _exit(127);
}

static int open_devnull(int flags)
{
    int fd = open("/dev/null", flags | O_CLOEXEC);

    if (fd < 0)
        fail_errno("cannot open /dev/null");
    return fd;
}

int child_spawn(struct child *ch, const char *const *argv, const char *const *env_extra,
                const char *dir, int in_fd, bool want_in, int out_fd)
{
    struct strvec env = STRVEC_INIT;
    int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 }, rep[2] = { -1, -1 };
    int child_in, child_out, e = 0;
    _cleanup_close_ int devnull = -1;
    ssize_t n;
    pid_t pid;

    ch->pid = -1;
    ch->in = ch->out = ch->err = -1;
    if (!argv[0])
        return fail("internal error: empty command");

    if (in_fd < 0 && !want_in) {
        devnull = open_devnull(O_RDONLY);
        if (devnull < 0)
            return -1;
    }
    if ((in_fd < 0 && want_in && pipe2(pin, O_CLOEXEC) < 0) ||
        (out_fd < 0 && pipe2(pout, O_CLOEXEC) < 0) || pipe2(perr, O_CLOEXEC) < 0 ||
        pipe2(rep, O_CLOEXEC) < 0) {
        fail_errno("cannot create a pipe");
        goto out_close;
    }
    child_in = in_fd >= 0 ? in_fd : want_in ? pin[0] : devnull;
    child_out = out_fd >= 0 ? out_fd : pout[1];
    build_env(&env, env_extra);

    pid = fork();
    if (pid < 0) {
        fail_errno("cannot fork");
        goto out_close;
    }
    if (pid == 0)
        child_exec(argv, env.v, dir, child_in, child_out, perr[1], rep[1]);

    run_children_started++;
    setpgid(pid, pid); /* also done by the child: whoever runs first wins */
    strvec_clear(&env);
    close(rep[1]);
    rep[1] = -1;
    do
        n = read(rep[0], &e, sizeof(e));
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(e)) {
        struct sbuf what = SBUF_INIT;

        waitpid(pid, NULL, 0);
        cmd_render(&what, argv, 200);
        errno = e;
        fail_errno("cannot run '%s'", what.buf);
        sbuf_release(&what);
        goto out_close;
    }
    close(rep[0]);
    if (pin[0] >= 0)
        close(pin[0]);
    if (pout[1] >= 0)
        close(pout[1]);
    close(perr[1]);
    ch->pid = pid;
    ch->in = pin[1];
    ch->out = pout[0];
    ch->err = perr[0];
    return 0;

out_close:
    strvec_clear(&env);
    for (int *p = &pin[0]; p <= &pin[1]; p++)
        closep(p);
    for (int *p = &pout[0]; p <= &pout[1]; p++)
        closep(p);
    for (int *p = &perr[0]; p <= &perr[1]; p++)
        closep(p);
    for (int *p = &rep[0]; p <= &rep[1]; p++)
        closep(p);
    return -1;
}

static int pidfd_for(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* Waits until `pid` exits or `deadline_ms` passes; 1 = exited (status in
 * *st), 0 = deadline. */
static int wait_until(pid_t pid, long long deadline_ms, int *st)
{
    _cleanup_close_ int pfd = pidfd_for(pid);

    for (;;) {
        pid_t r = waitpid(pid, st, WNOHANG);
        long long left;

        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR) {
            *st = 0;
            return 1; /* not our child any more: nothing to wait for */
        }
        left = deadline_ms ? deadline_ms - monotonic_ms() : 1000;
        if (deadline_ms && left <= 0)
            return 0;
        if (pfd >= 0) {
            struct pollfd p = { .fd = pfd, .events = POLLIN };

            poll(&p, 1, (int)(left > 60000 ? 60000 : left));
        } else {
            struct timespec ts = { 0, 10 * 1000000L };

            nanosleep(&ts, NULL);
        }
    }
}

void child_kill_group(pid_t pid)
{
    kill(-pid, SIGTERM);
    kill(pid, SIGTERM);
}

int child_wait(pid_t pid, long long deadline_ms, bool *timed_out)
{
    int st = 0;

    *timed_out = false;
    if (wait_until(pid, deadline_ms, &st))
        return decode_status(st);
    *timed_out = true;
    child_kill_group(pid);
    if (!wait_until(pid, monotonic_ms() + TERM_GRACE_MS, &st)) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    return decode_status(st);
}

static void keep_tail(struct sbuf *sb, size_t max)
{
    if (sb->len > 2 * max)
        sbuf_remove_head(sb, sb->len - max);
}

/* Moves data between us and the child until its output pipes close, it
 * exits (plus a grace period), or the deadline passes. */
static int pump(struct cmd *c, struct child *ch, long long deadline, bool *too_much)
{
    size_t out_max = c->out_max ? c->out_max : DEFAULT_OUT_MAX;
    size_t err_max = c->err_max ? c->err_max : DEFAULT_ERR_MAX;
    size_t in_off = 0;
    long long drain_until = 0;
    _cleanup_close_ int pfd = pidfd_for(ch->pid);
    char buf[65536];

    *too_much = false;
    if (ch->in >= 0 && !c->in_len) {
        close(ch->in);
        ch->in = -1;
    }
    /* A blocking write larger than the pipe buffer would wait for the child
     * to read while the child waits for us to read its output. */
    if (ch->in >= 0)
        fcntl(ch->in, F_SETFL, fcntl(ch->in, F_GETFL) | O_NONBLOCK);
    while (ch->out >= 0 || ch->err >= 0) {
        struct pollfd p[4];
        int np = 0, i_in = -1, i_out = -1, i_err = -1, i_pid = -1;
        long long now = monotonic_ms(), limit = deadline;
        int rc;

        if (ch->in >= 0) {
            p[i_in = np++] = (struct pollfd){ .fd = ch->in, .events = POLLOUT };
        }
        if (ch->out >= 0)
            p[i_out = np++] = (struct pollfd){ .fd = ch->out, .events = POLLIN };
        if (ch->err >= 0)
            p[i_err = np++] = (struct pollfd){ .fd = ch->err, .events = POLLIN };
        if (pfd >= 0 && !drain_until)
            p[i_pid = np++] = (struct pollfd){ .fd = pfd, .events = POLLIN };
        if (drain_until && (!limit || drain_until < limit))
            limit = drain_until;
        if (limit && now >= limit)
            return drain_until && now >= drain_until && (!deadline || now < deadline) ? 0 : 1;
        rc = poll(p, (nfds_t)np, limit ? (int)(limit - now) : -1);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            return fail_errno("poll failed");
        }
        if (i_pid >= 0 && p[i_pid].revents)
            drain_until = monotonic_ms() + DRAIN_GRACE_MS;
        if (i_in >= 0 && p[i_in].revents) {
            ssize_t n = write(ch->in, c->in + in_off, c->in_len - in_off);

            if (n > 0)
                in_off += (size_t)n;
            if ((n < 0 && errno != EINTR && errno != EAGAIN) || in_off == c->in_len) {
                /* EPIPE: the child does not want the rest; its status says why */
                close(ch->in);
                ch->in = -1;
            }
        }
        if (i_out >= 0 && p[i_out].revents) {
            ssize_t n = read(ch->out, buf, sizeof(buf));

            if (n > 0) {
                if (c->out.len + (size_t)n > out_max) {
                    *too_much = true;
                    return 1;
                }
                sbuf_add(&c->out, buf, (size_t)n);
            } else if (n == 0 || errno != EINTR) {
                close(ch->out);
                ch->out = -1;
            }
        }
        if (i_err >= 0 && p[i_err].revents) {
            ssize_t n = read(ch->err, buf, sizeof(buf));

            if (n > 0) {
                sbuf_add(&c->err, buf, (size_t)n);
                keep_tail(&c->err, err_max);
            } else if (n == 0 || errno != EINTR) {
                close(ch->err);
                ch->err = -1;
            }
        }
    }
    return 0;
}

int cmd_run_status(struct cmd *c)
{
    struct child ch;
    unsigned timeout = c->timeout_s ? c->timeout_s : run_default_timeout;
    long long deadline = monotonic_ms() + (long long)timeout * 1000;
    bool too_much = false;
    int rc;

    /* A child that exits early must not kill us when we write its stdin. */
    signal(SIGPIPE, SIG_IGN);
    c->status = -1;
    c->timed_out = false;
    sbuf_reset(&c->out);
    sbuf_reset(&c->err);
    if (log_debug_enabled()) {
        struct sbuf s = SBUF_INIT;

        cmd_render(&s, c->args.v, 1000);
        log_debug("run %s", s.buf);
        sbuf_release(&s);
    }
    if (child_spawn(&ch, c->args.v, c->env.v, c->dir, c->in_fd, c->in != NULL, c->out_fd) < 0)
        return -1;
    rc = pump(c, &ch, deadline, &too_much);
    if (rc != 0)
        child_kill_group(ch.pid);
    closep(&ch.in);
    closep(&ch.out);
    closep(&ch.err);
    c->status = child_wait(ch.pid, rc ? monotonic_ms() + TERM_GRACE_MS : deadline, &c->timed_out);
    if (rc < 0)
        return -1;
    if (too_much) {
        struct sbuf s = SBUF_INIT;

        cmd_render(&s, c->args.v, 200);
        fail("'%s' printed more than %zu bytes", c->what ? c->what : s.buf,
             c->out_max ? c->out_max : (size_t)DEFAULT_OUT_MAX);
        sbuf_release(&s);
        return -1;
    }
    if (rc > 0 || c->timed_out) {
        struct sbuf s = SBUF_INIT;

        c->timed_out = true;
        cmd_render(&s, c->args.v, 200);
        fail("'%s' did not finish within %u s and was stopped", c->what ? c->what : s.buf,
             timeout);
        sbuf_release(&s);
        return -1;
    }
    return 0;
}

int cmd_fail(const struct cmd *c)
{
    struct sbuf msg = SBUF_INIT, err = SBUF_INIT;
    const char *e;
    size_t elen;

    if (c->what)
        sbuf_addf(&msg, "%s", c->what);
    else {
        sbuf_addch(&msg, '\'');
        cmd_render(&msg, c->args.v, 200);
        sbuf_addch(&msg, '\'');
    }
    if (c->status > 128 && c->status < 128 + 65)
        sbuf_addf(&msg, " was killed by signal %d (%s)", c->status - 128,
                  strsignal(c->status - 128));
    else
        sbuf_addf(&msg, " failed with exit code %d", c->status);

    /* The end of stderr is where programs put the actual error. */
    sbuf_add(&err, c->err.buf, c->err.len);
    sbuf_rtrim(&err);
    e = err.buf;
    elen = err.len;
    if (elen > 600) {
        e += elen - 600;
        elen = 600;
    }
    if (elen) {
        sbuf_adds(&msg, ": ");
        sbuf_add_oneline(&msg, e, elen);
    }
    fail("%s", msg.buf);
    sbuf_release(&msg);
    sbuf_release(&err);
    return -1;
}

int cmd_run(struct cmd *c)
{
    if (cmd_run_status(c) < 0)
        return -1;
    if (c->status != 0)
        return cmd_fail(c);
    return 0;
}

void cmd_release(struct cmd *c)
{
    strvec_clear(&c->args);
    strvec_clear(&c->env);
    sbuf_release(&c->out);
    sbuf_release(&c->err);
}
