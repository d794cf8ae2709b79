/*
 * oned-tm - plays the part of oned's transfer driver (one_tm.rb) for tests.
 *
 *   oned-tm REMOTES_DIR VMID TRANSFER_FILE [OPTIONS]
 *       runs a transfer file as TransferManagerDriver#action_transfer does
 *   oned-tm REMOTES_DIR VMID --vmm "CMD LINE" [--stdin FILE] [OPTIONS]
 *       runs one TM command the way the VMM driver (one_vmm_exec.rb) runs
 *       its TM steps (CONTEXT, PRE/POST/FAILMIGRATE, SNAP_CREATE_LIVE, ...):
 *       the same do_transfer_action, every TM directory allowed, stdin =
 *       FILE's content (the base64 VM for the migrate hooks) or empty
 *
 * OPTIONS
 *   --allowed TM,TM...  the driver's -d list (default: every directory of
 *                       REMOTES_DIR/tm, as when -d is not given)
 *   --cwd DIR           working directory of the actions (default: the
 *                       directory above REMOTES_DIR, i.e. /var/lib/one for
 *                       /var/lib/one/remotes)
 *   --env NAME=VALUE    set (or replace) a variable of the actions'
 *                       environment (repeatable): HOME, the variables an rc
 *                       file (tmrc, vmm_execrc) exports
 *   --timeout SECONDS   a test-safety limit that oned does not have (default
 *                       900, 0 = none): an action still running then is
 *                       killed with its process group, and oned-tm exits 2
 *                       without a reply (oned would still be waiting)
 *   --record DIR        keep what each command did, for the tests' eyes only:
 *                       DIR/<n>.cmd (the command line the driver built),
 *                       .stdout, .stderr, .rc (exit code, or "exec" when it
 *                       could not be started); n counts from 1
 *
 * What is reproduced (protocol §1.3-1.5; src/tm_mad/one_tm.rb,
 * src/mad/ruby/{DriverExecHelper,CommandManager}.rb at f847cf2e):
 *   - lines matching ^\s*# or ^\s*$ are skipped; the others are split on
 *     runs of whitespace (Ruby's String#split(' '));
 *   - the action is lower-cased; the TM must be allowed ("Transfer Driver
 *     'X' not available"); the script is REMOTES/tm/<tm>/<action>, else, for
 *     a name with a dot, REMOTES/tm/<tm>/<name up to the last dot> ("Driver
 *     path 'P' does not exists" / "Driver path 'P' nor 'S' exists");
 *   - the command line is the path and the Shellwords-escaped arguments; as
 *     Ruby's spawn does, it goes through /bin/sh -c when it holds a shell
 *     metacharacter (a backslash from the escaping, always when an argument
 *     has a quote, '=', '%'...) and is exec'd directly otherwise (and through
 *     /bin/sh when exec says ENOEXEC); either way the action's argv is the
 *     line's words;
 *   - new process group, nice +19 (madcommon's "nice -n $PRIORITY"), the
 *     working directory and environment of oned's driver (tm/<action>/<n>/env
 *     of the captures: LANG=C.UTF-8, PRIORITY=19, ONE_MAD_DEBUG=, ...), stdin a
 *     pipe that is closed at once (or after FILE's content, --vmm);
 *   - no time limit (the driver has none); after the action exits, its stdout
 *     and stderr are read for at most 0.1 s more each, and one still held
 *     open by a descendant (a daemonised ssh master...) counts as EMPTY, as
 *     when Ruby kills its reader thread;
 *   - exit code = status, 255 when killed by a signal; a failing command gets
 *     "LOG I <id> Command execution failed (exit code: N): <command line>" and
 *     its whole stderr logged line by line (DriverExecHelper#log: ERROR:/
 *     DEBUG:/INFO: prefixes give E/D/I, anything else I); a command that
 *     cannot be started gives "Internal error <errno text> - <path>";
 *   - then get_info_from_execution: every stderr line stripped; a line
 *     matching ^(ERROR|INFO|WARN|DEBUG):\s+(\d+)?\s*(.*)$ is sent as
 *     "LOG <E|I|W|D> <id or -1> <text>" (the number read by Ruby's Integer(),
 *     so "010" is 8 and "08" is -1); the other lines are glued without
 *     separator into the failure info ("-" when empty);
 *   - stderr that is not valid UTF-8 makes Ruby's String#strip raise: on a
 *     failed command the info becomes "Internal error invalid byte sequence
 *     in UTF-8"; on a successful one the lines before the bad one are handled
 *     and the whole transfer fails with "invalid byte sequence in UTF-8";
 *   - the first failing line stops the file: "TRANSFER FAILURE <id> <info>",
 *     else "TRANSFER SUCCESS <id> -" (stdout of the actions is ignored).
 * In --vmm mode the last line is "SUCCESS -" or "FAILURE <info>" (the VMM
 * driver keeps the info of a failed step; it discards TM stdout).
 *
 * Output: the lines the driver would send to oned, on stdout. Exit status: 0
 * success, 1 failure, 2 usage or harness error.
 */
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "cleanup.h"
#include "sbuf.h"
#include "strvec.h"

#define PROG "oned-tm"
/* Ruby joins each reader thread for 0.1 s after the action exits. */
#define READER_GRACE_MS 100
/* Far beyond anything an action prints; past it the data is dropped. */
#define MAX_CAPTURE (64u << 20)

static const char *remotes; /* REMOTES_DIR without trailing slashes */
static const char *vmid;    /* the id, as oned sent it */
static const char *cwd_dir;
static const char *record_dir;
static unsigned timeout_s = 900;
static struct strvec allowed = STRVEC_INIT;
static bool allow_all = true;
static struct strvec env = STRVEC_INIT;
static unsigned record_n;

static NORETURN void usage(void)
{
    fputs("usage: oned-tm REMOTES_DIR VMID TRANSFER_FILE [OPTIONS]\n"
          "       oned-tm REMOTES_DIR VMID --vmm \"CMD LINE\" [--stdin FILE] [OPTIONS]\n"
          "options: --allowed TM,TM...  --cwd DIR  --env NAME=VALUE  --record DIR\n"
          "         --timeout SECONDS\n",
          stderr);
    exit(2);
}

static NORETURN void harness_error(const char *fmt, ...) PRINTF_LIKE(1, 2);
static NORETURN void harness_error(const char *fmt, ...)
{
    va_list ap;

    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ Ruby strings */

/* Whether s[0..n) is valid UTF-8 (what Ruby's coderange check accepts). */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i], need, min;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1, min = 0x80, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, min = 0x800, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= need)
            return false;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

/* Ruby's String#strip: NUL and ASCII whitespace at both ends. */
static bool ruby_space(unsigned char c)
{
    return c == '\0' || c == ' ' || (c >= '\t' && c <= '\r');
}

static void strip_range(const char **s, size_t *n)
{
    while (*n && ruby_space((unsigned char)**s))
        (*s)++, (*n)--;
    while (*n && ruby_space((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

/* \s of a Ruby regexp. */
static bool regexp_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Shellwords.escape of one (non-empty) word: every byte outside
 * [A-Za-z0-9_\-.,:+/@\n] is preceded by a backslash; a multibyte UTF-8
 * character gets one backslash in front of the whole character. */
static void shell_escape(struct sbuf *out, const char *w)
{
    if (!*w) {
        sbuf_adds(out, "''");
        return;
    }
    for (const unsigned char *p = (const unsigned char *)w; *p;) {
        size_t len = 1;

        if (*p >= 0xc0) {
            while (p[len] && (p[len] & 0xc0) == 0x80 && len < 4)
                len++;
        }
        if (*p < 0x80 && (isalnum(*p) || strchr("_-.,:+/@", *p))) {
            sbuf_addch(out, *p);
        } else if (*p == '\n') {
            sbuf_adds(out, "'\n'");
        } else {
            sbuf_addch(out, '\\');
            sbuf_add(out, p, len);
        }
        p += len;
    }
}

/* Whether Ruby's spawn would hand the command string to /bin/sh
 * (process.c rb_exec_fillarg): a metacharacter anywhere, or '=' in the first
 * word before any '/'. The first word here is always an absolute path. */
static bool needs_shell(const char *cmd)
{
    bool first_word = true, seen_slash = false, started = false;

    for (const char *p = cmd; *p; p++) {
        if (*p == ' ' || *p == '\t') {
            if (started)
                first_word = false;
        } else {
            started = true;
        }
        if (strchr("*?{}[]<>()~&|\\$;'`\"\n#", *p))
            return true;
        if (first_word && !seen_slash) {
            if (*p == '=')
                return true;
            if (*p == '/')
                seen_slash = true;
        }
    }
    return false;
}

/* ------------------------------------------------------------ messages */

static void send_message(const char *action, const char *result, const char *id, const char *info,
                         size_t info_len)
{
    /* STDOUT.puts "#{action} #{result} #{id} #{info}": a newline is added
     * unless the text ends with one. */
    printf("%s %s %s ", action, result, id);
    fwrite(info, 1, info_len, stdout);
    if (!info_len || info[info_len - 1] != '\n')
        putchar('\n');
    fflush(stdout);
}

static void send_log(char sev, const char *id, const char *msg, size_t len)
{
    char s[2] = { sev, '\0' };

    send_message("LOG", s, id, msg, len);
}

/* DriverExecHelper#log(number, message): the message stripped, each line
 * with an ERROR:/DEBUG:/INFO: prefix (no blank needed) logged at E/D/I with
 * the text after the colon, any other line at I, every line stripped. */
static void driver_log(const char *id, const char *message, size_t len)
{
    const char *p = message, *end;
    size_t n = len;

    strip_range(&p, &n);
    end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *text = p;
        size_t tl;
        char sev = 'I';
        static const struct {
            const char *prefix;
            char sev;
        } pre[] = { { "ERROR:", 'E' }, { "DEBUG:", 'D' }, { "INFO:", 'I' } };

        for (size_t i = 0; i < ARRAY_SIZE(pre); i++) {
            size_t pl = strlen(pre[i].prefix);

            if ((size_t)(le - p) >= pl && !memcmp(p, pre[i].prefix, pl)) {
                sev = pre[i].sev;
                text = p + pl;
                break;
            }
        }
        tl = (size_t)(le - text);
        strip_range(&text, &tl);
        send_log(sev, id, text, tl);
        p = nl ? nl + 1 : end;
    }
}

/* Ruby's Integer() of a run of ASCII digits: a leading 0 means octal, and
 * an octal number with an 8 or 9 is an error (-1 here, as the driver does). */
static void ruby_integer(const char *d, size_t n, struct sbuf *out)
{
    uint64_t v = 0;

    if (n < 2 || d[0] != '0') {
        sbuf_add(out, d, n);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        if (d[i] > '7') {
            sbuf_adds(out, "-1");
            return;
        }
        v = v * 8 + (uint64_t)(d[i] - '0');
    }
    sbuf_addf(out, "%llu", (unsigned long long)v);
}

/* get_info_from_execution for one action's stderr. Sends the LOG lines,
 * fills `info` with the glued plain lines. Returns false when Ruby would
 * have raised on a line that is not valid UTF-8 (the lines before it are
 * handled). */
static bool parse_stderr(const char *err, size_t len, struct sbuf *info)
{
    static const struct {
        const char *prefix;
        char sev;
    } pre[] = { { "ERROR:", 'E' }, { "INFO:", 'I' }, { "WARN:", 'W' }, { "DEBUG:", 'D' } };
    const char *p = err, *end = err + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl + 1 : end;
        const char *l = p, *q = NULL, *digits, *msg;
        size_t n = (size_t)(le - p), nd, ml;
        const char *lend;
        char sev = 0;

        p = le;
        if (!valid_utf8((const unsigned char *)l, n))
            return false;
        strip_range(&l, &n);
        lend = l + n;
        for (size_t i = 0; i < ARRAY_SIZE(pre); i++) {
            size_t pl = strlen(pre[i].prefix);

            if (n >= pl && !memcmp(l, pre[i].prefix, pl)) {
                sev = pre[i].sev;
                q = l + pl;
                break;
            }
        }
        /* ":\s+" is required */
        if (!sev || q >= lend || !regexp_space(*q)) {
            sbuf_add(info, l, n);
            continue;
        }
        while (q < lend && regexp_space(*q))
            q++;
        digits = q;
        while (q < lend && *q >= '0' && *q <= '9')
            q++;
        nd = (size_t)(q - digits);
        while (q < lend && regexp_space(*q))
            q++;
        msg = q;
        ml = (size_t)(lend - q);
        strip_range(&msg, &ml);
        {
            struct sbuf idb = SBUF_INIT;

            if (nd)
                ruby_integer(digits, nd, &idb);
            else
                sbuf_adds(&idb, "-1");
            send_log(sev, idb.buf, msg, ml);
            sbuf_release(&idb);
        }
    }
    return true;
}

/* ------------------------------------------------------------ running */

struct result {
    int code; /* as GenericCommand#run sets it */
    bool exec_failed;
    struct sbuf out, err; /* what Ruby's readers returned */
};

static void record(const char *suffix, const void *data, size_t len)
{
    _cleanup_free_ char *path = NULL;
    FILE *f;
    bool ok;

    if (!record_dir)
        return;
    path = xasprintf("%s/%u.%s", record_dir, record_n, suffix);
    f = fopen(path, "w");
    if (!f)
        harness_error("cannot write %s: %s", path, strerror(errno));
    ok = fwrite(data, 1, len, f) == len;
    if (fclose(f) != 0)
        ok = false;
    if (!ok)
        harness_error("cannot write %s: %s", path, strerror(errno));
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        harness_error("fcntl: %s", strerror(errno));
}

static NORETURN void child(const struct strvec *argv, int in, int out, int err, int report)
{
    static const int sigs[] = { SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGALRM };
    sigset_t none;
    int e;

    setpgid(0, 0);
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        signal(sigs[i], SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    errno = 0;
    if (nice(19) < 0 && errno) {
        /* as nice(1), a refusal is not fatal */
    }
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 || chdir(cwd_dir) < 0)
        goto fail;
    for (int fd = 3; fd < 1024; fd++)
        if (fd != report)
            close(fd);
    execve(argv->v[0], (char *const *)argv->v, (char *const *)env.v);
    if (errno == ENOEXEC) {
        /* Ruby, like execvp, runs a file without #! with /bin/sh */
        struct strvec sh = STRVEC_INIT;

        strvec_pushl(&sh, "sh", argv->v[0], NULL);
        for (size_t i = 1; i < argv->nr; i++)
            strvec_push(&sh, argv->v[i]);
        execve("/bin/sh", (char *const *)sh.v, (char *const *)env.v);
    }
fail:
    e = errno;
    if (write(report, &e, sizeof(e)) < 0) {
        /* nothing left to do */
    }
    _exit(127);
}

/* One pipe being read. */
struct reader {
    int fd;
    struct sbuf *buf;
    bool eof;
    long long done_ms;
};

static void read_some(struct reader *r)
{
    char chunk[65536];
    ssize_t n = read(r->fd, chunk, sizeof(chunk));

    if (n > 0) {
        if (r->buf->len < MAX_CAPTURE)
            sbuf_add(r->buf, chunk, (size_t)n);
        return;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    r->eof = true;
    r->done_ms = now_ms();
    close(r->fd);
    r->fd = -1;
}

/* Runs the command line as LocalCommand.run does; `in` is written to its
 * stdin, which is then closed. */
static void run_command(const char *cmdline, const char *in, size_t in_len, struct result *res)
{
    struct strvec argv = STRVEC_INIT;
    int pin[2], pout[2], perr[2], rep[2], e = 0, status = 0;
    struct reader rd[2];
    size_t in_off = 0;
    long long exit_ms = -1, deadline[2] = { -1, -1 }, start = now_ms();
    ssize_t n;
    pid_t pid;

    res->code = -1;
    res->exec_failed = false;
    sbuf_init(&res->out);
    sbuf_init(&res->err);

    if (needs_shell(cmdline)) {
        strvec_pushl(&argv, "/bin/sh", "-c", cmdline, NULL);
    } else {
        /* split on blanks, as Ruby does for a command without metacharacters */
        _cleanup_free_ char *copy = xstrdup(cmdline);
        char *save = NULL;

        for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
            strvec_push(&argv, w);
    }
    if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0 ||
        pipe2(rep, O_CLOEXEC) < 0)
        harness_error("pipe: %s", strerror(errno));
    fflush(stdout);
    pid = fork();
    if (pid < 0)
        harness_error("fork: %s", strerror(errno));
    if (pid == 0)
        child(&argv, pin[0], pout[1], perr[1], rep[1]);
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    close(rep[1]);
    do
        n = read(rep[0], &e, sizeof(e));
    while (n < 0 && errno == EINTR);
    close(rep[0]);
    if (n == (ssize_t)sizeof(e)) {
        /* Ruby raises Errno::X "<strerror> - <program>"; run() rescues it */
        waitpid(pid, NULL, 0);
        close(pin[1]);
        close(pout[0]);
        close(perr[0]);
        res->exec_failed = true;
        res->code = 255;
        sbuf_addf(&res->err, "Internal error %s - %s", strerror(e), argv.v[0]);
        strvec_clear(&argv);
        return;
    }
    strvec_clear(&argv);

    set_nonblock(pin[1]);
    rd[0] = (struct reader){ .fd = pout[0], .buf = &res->out };
    rd[1] = (struct reader){ .fd = perr[0], .buf = &res->err };
    for (int i = 0; i < 2; i++)
        set_nonblock(rd[i].fd);
    if (!in_len) {
        close(pin[1]);
        pin[1] = -1;
    }

    for (;;) {
        struct pollfd pfd[3];
        int np = 0, idx[3];
        long long t = now_ms();
        int timeout = 50;

        if (exit_ms < 0 && timeout_s && t - start > (long long)timeout_s * 1000) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            harness_error("'%s' still ran after %u s (--timeout; oned would wait for ever): "
                          "killed, no reply",
                          cmdline, timeout_s);
        }
        if (exit_ms < 0) {
            pid_t w = waitpid(pid, &status, WNOHANG);

            if (w == pid) {
                exit_ms = t;
                /* [out, err].each { |r| r.join(0.1); r.kill } */
                deadline[0] = exit_ms + READER_GRACE_MS;
            } else if (w < 0 && errno != EINTR) {
                harness_error("waitpid: %s", strerror(errno));
            }
        }
        if (exit_ms >= 0) {
            if (deadline[1] < 0 && (rd[0].eof || t >= deadline[0]))
                deadline[1] = (rd[0].eof && rd[0].done_ms < deadline[0]
                                   ? (rd[0].done_ms > exit_ms ? rd[0].done_ms : exit_ms)
                                   : deadline[0]) +
                              READER_GRACE_MS;
            for (int i = 0; i < 2; i++) {
                if (!rd[i].eof && deadline[i] >= 0 && t >= deadline[i]) {
                    /* the killed reader's value is nil: nothing at all */
                    fprintf(stderr,
                            PROG ": the action's %s was still open %d ms after it exited "
                                 "(held by a process it left behind): the driver sees "
                                 "it as empty\n",
                            i ? "stderr" : "stdout", READER_GRACE_MS);
                    sbuf_reset(rd[i].buf);
                    close(rd[i].fd);
                    rd[i].fd = -1;
                    rd[i].eof = true;
                    rd[i].done_ms = t;
                }
            }
            if (rd[0].eof && rd[1].eof)
                break;
            timeout = 10;
        }
        if (pin[1] >= 0) {
            pfd[np] = (struct pollfd){ .fd = pin[1], .events = POLLOUT };
            idx[np++] = 2;
        }
        for (int i = 0; i < 2; i++) {
            if (!rd[i].eof) {
                pfd[np] = (struct pollfd){ .fd = rd[i].fd, .events = POLLIN };
                idx[np++] = i;
            }
        }
        if (poll(pfd, (nfds_t)np, timeout) < 0) {
            if (errno == EINTR)
                continue;
            harness_error("poll: %s", strerror(errno));
        }
        for (int k = 0; k < np; k++) {
            if (!pfd[k].revents)
                continue;
            if (idx[k] == 2) {
                ssize_t w = write(pin[1], in + in_off, in_len - in_off);

                if (w > 0)
                    in_off += (size_t)w;
                /* EPIPE: "the cmd doesn't read the input, ignore error" */
                if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off == in_len) {
                    close(pin[1]);
                    pin[1] = -1;
                }
            } else {
                read_some(&rd[idx[k]]);
            }
        }
    }
    if (pin[1] >= 0)
        close(pin[1]);
    /* status.exited? ? exitstatus : 255 */
    res->code = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

/* do_transfer_action: returns true on success; on failure `info` is the
 * text of the reply. Sets *raised when Ruby would have raised out of it
 * (the message is then in `info`). */
static bool do_transfer_action(const struct strvec *cmd, const char *in, size_t in_len,
                               struct sbuf *info, bool *raised)
{
    _cleanup_free_ char *action = xstrdup(cmd->v[0]);
    const char *tm = cmd->nr > 1 ? cmd->v[1] : "";
    struct sbuf path = SBUF_INIT, line = SBUF_INIT;
    struct stat st;
    struct result res;
    bool ok = false, known = false;

    *raised = false;
    for (char *p = action; *p; p++)
        *p = (char)tolower((unsigned char)*p);

    if (allow_all) {
        _cleanup_free_ char *d = xasprintf("%s/tm/%s", remotes, tm);

        /* Dir["<tm dir>/<star>/"]: the visible entries that are directories */
        known = cmd->nr > 1 && *tm && *tm != '.' && !strchr(tm, '/') && stat(d, &st) == 0 &&
                S_ISDIR(st.st_mode);
    } else {
        for (size_t i = 0; i < allowed.nr; i++)
            if (cmd->nr > 1 && streq(allowed.v[i], tm))
                known = true;
    }
    if (!known) {
        sbuf_addf(info, "Transfer Driver '%s' not available", tm);
        return false;
    }

    sbuf_addf(&path, "%s/tm/%s/%s", remotes, tm, action);
    if (stat(path.buf, &st) < 0) {
        char *dot = strrchr(action, '.');
        struct sbuf shortp = SBUF_INIT;

        if (!dot) {
            sbuf_addf(info, "Driver path '%s' does not exists", path.buf);
            sbuf_release(&path);
            return false;
        }
        sbuf_addf(&shortp, "%s/tm/%s/%.*s", remotes, tm, (int)(dot - action), action);
        if (stat(shortp.buf, &st) < 0) {
            sbuf_addf(info, "Driver path '%s' nor '%s' exists", path.buf, shortp.buf);
            sbuf_release(&path);
            sbuf_release(&shortp);
            return false;
        }
        sbuf_release(&path);
        path = shortp;
    }

    /* path << ' ' << args */
    sbuf_add(&line, path.buf, path.len);
    sbuf_addch(&line, ' ');
    for (size_t i = 2; i < cmd->nr; i++) {
        if (i > 2)
            sbuf_addch(&line, ' ');
        shell_escape(&line, cmd->v[i]);
    }
    sbuf_release(&path);

    record_n++;
    record("cmd", line.buf, line.len);
    run_command(line.buf, in, in_len, &res);
    record("stdout", res.out.buf, res.out.len);
    record("stderr", res.err.buf, res.err.len);
    if (record_dir) {
        _cleanup_free_ char *rc = res.exec_failed ? xstrdup("exec\n") : xasprintf("%d\n", res.code);

        record("rc", rc, strlen(rc));
    }

    if (res.exec_failed) {
        /* run(): rescue => log("Internal error ..."), stderr = that */
        driver_log(vmid, res.err.buf, res.err.len);
    } else if (res.code != 0) {
        struct sbuf m = SBUF_INIT;

        sbuf_addf(&m, "Command execution failed (exit code: %d): %s", res.code, line.buf);
        driver_log(vmid, m.buf, m.len);
        sbuf_release(&m);
        if (valid_utf8((const unsigned char *)res.err.buf, res.err.len)) {
            driver_log(vmid, res.err.buf, res.err.len);
        } else {
            /* message.strip raises; run() rescues */
            sbuf_reset(&res.err);
            sbuf_adds(&res.err, "Internal error invalid byte sequence in UTF-8");
            driver_log(vmid, res.err.buf, res.err.len);
            res.code = 255;
        }
    }
    sbuf_release(&line);

    {
        struct sbuf glued = SBUF_INIT;

        if (!parse_stderr(res.err.buf, res.err.len, &glued)) {
            /* raised out of get_info_from_execution */
            *raised = true;
            sbuf_adds(info, "invalid byte sequence in UTF-8");
        } else if (res.code == 0) {
            ok = true;
        } else {
            /* err_info.tr("\n", ' ').strip, "-" when empty */
            const char *s = glued.buf;
            size_t n = glued.len;

            strip_range(&s, &n);
            if (n)
                sbuf_add(info, s, n);
            else
                sbuf_adds(info, "-");
        }
        sbuf_release(&glued);
    }
    sbuf_release(&res.out);
    sbuf_release(&res.err);
    return ok;
}

/* ------------------------------------------------------------ main */

/* line.split(' '): words separated by runs of ASCII whitespace (NUL is
 * not whitespace there). */
static void split_words(struct strvec *out, const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t j;

        while (i < n && regexp_space(s[i]))
            i++;
        j = i;
        while (j < n && !regexp_space(s[j]))
            j++;
        if (j > i) {
            _cleanup_free_ char *w = xstrndup(s + i, j - i);

            strvec_push(out, w);
        }
        i = j;
    }
}

static bool blank_or_comment(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && regexp_space(s[i]))
        i++;
    return i == n || s[i] == '#';
}

static void setenv_entry(const char *name_value)
{
    const char *eq = strchr(name_value, '=');
    size_t nl;
    struct strvec keep = STRVEC_INIT;

    if (!eq || eq == name_value)
        harness_error("--env wants NAME=VALUE, not '%s'", name_value);
    nl = (size_t)(eq - name_value) + 1;
    for (size_t i = 0; i < env.nr; i++)
        if (strncmp(env.v[i], name_value, nl) != 0)
            strvec_push(&keep, env.v[i]);
    strvec_clear(&env);
    env = keep;
    strvec_push(&env, name_value);
}

/* What the actions of oned's driver find in their environment (captures:
 * tm/<action>/<n>/env; the recorder's own SHLVL and _ set back to what bash's
 * exec of nice and ruby leaves). */
static void base_env(void)
{
    struct passwd *pw = getpwuid(getuid());
    const char *user = pw ? pw->pw_name : "oneadmin";
    const char *home = getenv("HOME");

    strvec_pushf(&env, "HOME=%s", home ? home : (pw ? pw->pw_dir : "/var/lib/one"));
    strvec_push(&env, "LANG=C.UTF-8");
    strvec_pushf(&env, "LOGNAME=%s", user);
    strvec_pushf(&env, "USER=%s", user);
    strvec_push(&env, "ONE_MAD_DEBUG=");
    strvec_push(&env, "PATH=/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    strvec_push(&env, "PRIORITY=19");
    strvec_pushf(&env, "PWD=%s", cwd_dir);
    strvec_pushf(&env, "OLDPWD=%s", cwd_dir);
    strvec_push(&env, "RUBYLIB=/usr/lib/one/ruby:/usr/lib/one/ruby/vendors/packethost/lib");
    strvec_push(&env, "SHELL=/bin/bash");
    strvec_push(&env, "SHLVL=0");
    strvec_push(&env, "_=/usr/bin/nice");
}

/* --vmm: one command, as VmmAction#execute_steps runs a :tm step. */
static int run_vmm(const char *line, const char *stdin_file)
{
    struct strvec cmd = STRVEC_INIT;
    struct sbuf in = SBUF_INIT, info = SBUF_INIT;
    bool raised, ok;

    if (stdin_file && sbuf_read_file(&in, stdin_file, 0) < 0)
        harness_error("cannot read %s: %s", stdin_file, strerror(errno));
    /* tm_command.strip.split(' ') */
    split_words(&cmd, line, strlen(line));
    if (!cmd.nr)
        harness_error("--vmm: empty command line");
    ok = do_transfer_action(&cmd, in.buf, in.len, &info, &raised);
    if (ok)
        printf("SUCCESS -\n");
    else
        printf("FAILURE %s\n", info.buf);
    fflush(stdout);
    strvec_clear(&cmd);
    sbuf_release(&in);
    sbuf_release(&info);
    return ok ? 0 : 1;
}

static void send_transfer_failure(const char *info)
{
    send_message("TRANSFER", "FAILURE", vmid, info, strlen(info));
}

/* TransferManagerDriver#action_transfer. */
static int run_file(const char *file)
{
    struct sbuf text = SBUF_INIT, info = SBUF_INIT;
    struct strvec *cmds = NULL;
    size_t ncmds = 0, alloc = 0;
    const char *p, *end;
    int rc = 0;

    if (sbuf_read_file(&text, file, 0) < 0) {
        if (errno != ENOENT)
            harness_error("cannot read %s: %s", file, strerror(errno));
        sbuf_addf(&info, "Transfer file '%s' does not exist", file);
        send_transfer_failure(info.buf);
        sbuf_release(&text);
        sbuf_release(&info);
        return 1;
    }
    /* parse_script: every line first, then the commands one by one */
    p = text.buf;
    end = text.buf + text.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl + 1 : end;

        if (!valid_utf8((const unsigned char *)p, (size_t)(le - p))) {
            /* line.match raises in parse_script, rescued by action_transfer */
            send_transfer_failure("invalid byte sequence in UTF-8");
            rc = 1;
            goto out;
        }
        if (!blank_or_comment(p, (size_t)(le - p))) {
            ALLOC_GROW(cmds, ncmds + 1, alloc);
            strvec_init(&cmds[ncmds]);
            split_words(&cmds[ncmds], p, (size_t)(le - p));
            ncmds++;
        }
        p = le;
    }
    for (size_t k = 0; k < ncmds; k++) {
        bool raised;

        sbuf_reset(&info);
        if (!do_transfer_action(&cmds[k], "", 0, &info, &raised)) {
            send_transfer_failure(info.buf);
            rc = 1;
            goto out;
        }
    }
    send_message("TRANSFER", "SUCCESS", vmid, "-", 1);
out:
    for (size_t k = 0; k < ncmds; k++)
        strvec_clear(&cmds[k]);
    free(cmds);
    sbuf_release(&text);
    sbuf_release(&info);
    return rc;
}

int main(int argc, char **argv)
{
    const char *file = NULL, *vmm_line = NULL, *stdin_file = NULL;
    struct strvec envs = STRVEC_INIT;
    _cleanup_free_ char *rem = NULL, *cwd_default = NULL;
    int i, rc;

    if (argc < 4)
        usage();
    if (argv[1][0] == '/') {
        rem = xstrdup(argv[1]);
    } else {
        _cleanup_free_ char *here = getcwd(NULL, 0);

        if (!here)
            harness_error("getcwd: %s", strerror(errno));
        rem = xasprintf("%s/%s", here, argv[1]);
    }
    for (size_t n = strlen(rem); n > 1 && rem[n - 1] == '/'; n--)
        rem[n - 1] = '\0';
    remotes = rem;
    vmid = argv[2];
    if (streq(argv[3], "--vmm")) {
        if (argc < 5)
            usage();
        vmm_line = argv[4];
        i = 5;
    } else {
        file = argv[3];
        i = 4;
    }
    for (; i < argc; i++) {
        const char *o = argv[i];

        if (i + 1 >= argc)
            usage();
        if (streq(o, "--allowed")) {
            /* arg.split(',').map(&:strip) */
            const char *p = argv[++i];

            allow_all = false;
            while (*p) {
                const char *c = strchr(p, ',');
                size_t n = c ? (size_t)(c - p) : strlen(p);
                const char *w = p;
                _cleanup_free_ char *word = NULL;

                strip_range(&w, &n);
                word = xstrndup(w, n);
                strvec_push(&allowed, word);
                if (!c)
                    break;
                p = c + 1;
            }
        } else if (streq(o, "--cwd")) {
            cwd_dir = argv[++i];
        } else if (streq(o, "--env")) {
            strvec_push(&envs, argv[++i]);
        } else if (streq(o, "--timeout")) {
            char *e = NULL;
            unsigned long v = strtoul(argv[++i], &e, 10);

            if (!*argv[i] || *e || v > 86400)
                usage();
            timeout_s = (unsigned)v;
        } else if (streq(o, "--record")) {
            record_dir = argv[++i];
        } else if (streq(o, "--stdin") && vmm_line) {
            stdin_file = argv[++i];
        } else {
            usage();
        }
    }
    if (!cwd_dir) {
        cwd_default = xasprintf("%s/..", remotes);
        cwd_dir = cwd_default;
    }
    {
        char *real = realpath(cwd_dir, NULL);

        if (!real)
            harness_error("cannot use %s as the working directory: %s", cwd_dir, strerror(errno));
        cwd_dir = real;
    }
    base_env();
    for (size_t k = 0; k < envs.nr; k++)
        setenv_entry(envs.v[k]);
    if (record_dir && mkdir(record_dir, 0755) < 0 && errno != EEXIST)
        harness_error("cannot create %s: %s", record_dir, strerror(errno));
    signal(SIGPIPE, SIG_IGN);

    rc = vmm_line ? run_vmm(vmm_line, stdin_file) : run_file(file);
    free((char *)cwd_dir);
    strvec_clear(&envs);
    strvec_clear(&env);
    strvec_clear(&allowed);
    return rc;
}
