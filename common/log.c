/* log.c - log lines and the failure reason, in the shape oned parses (§1.5). */
#include "log.h"

static const char *log_action = "qcow2c";
static int log_vmid = -1;
static bool log_debug_on;

/* The reason lives in a fixed buffer: fail() must work when malloc does not. */
static char reason[2048];
static bool have_reason;

void log_setup(const char *action, int vmid)
{
    log_action = action;
    log_vmid = vmid;
}

void log_set_vmid(int vmid)
{
    log_vmid = vmid;
}

void log_enable_debug(bool on)
{
    log_debug_on = on;
}

bool log_debug_enabled(void)
{
    return log_debug_on;
}

/* Writes the whole line with one write(2) so that concurrent writers to the
 * same pipe (children, other threads of oned's driver) cannot split it. */
static void write_line(const char *s, size_t len)
{
    while (len) {
        ssize_t n = write(STDERR_FILENO, s, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

static void oneline_inplace(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

/* No allocation here: die("out of memory") ends up logging too. */
static void vlog(enum log_level level, const char *fmt, va_list ap)
{
    static const char *const names[] = { "ERROR", "WARN", "INFO", "DEBUG" };
    char msg[4096];
    char line[sizeof(msg) + 128];
    int n;

    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        return;
    oneline_inplace(msg);
    /* The action name always precedes the text, so a message can never start
     * with a digit that oned would take for a VM id. */
    if (log_vmid >= 0)
        n = snprintf(line, sizeof(line), "%s: %d %s: %s\n", names[level], log_vmid,
                     log_action, msg);
    else
        n = snprintf(line, sizeof(line), "%s: %s: %s\n", names[level], log_action, msg);
    if (n <= 0)
        return;
    if ((size_t)n >= sizeof(line)) /* cut: the line must still end */
        line[sizeof(line) - 2] = '\n';
    write_line(line, strnlen(line, sizeof(line)));
}

void one_log(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

static int vfail(const char *fmt, va_list ap, int errnum)
{
    char msg[sizeof(reason)];
    size_t len;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (errnum) {
        len = strlen(msg);
        snprintf(msg + len, sizeof(msg) - len, ": %s", strerror(errnum));
    }
    oneline_inplace(msg);
    if (have_reason) {
        one_log(LOG_LEVEL_ERROR, "%s", msg);
        return -1;
    }
    len = strlen(msg);
    memcpy(reason, msg, len + 1);
    have_reason = true;
    return -1;
}

int fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(fmt, ap, 0);
    va_end(ap);
    return -1;
}

int fail_errno(const char *fmt, ...)
{
    int errnum = errno;
    va_list ap;

    va_start(ap, fmt);
    vfail(fmt, ap, errnum ? errnum : EIO);
    va_end(ap);
    errno = errnum;
    return -1;
}

int fail_context(const char *fmt, ...)
{
    char ctx[sizeof(reason)];
    char joined[2 * sizeof(reason) + 4];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ctx, sizeof(ctx), fmt, ap);
    va_end(ap);
    oneline_inplace(ctx);
    if (!have_reason) {
        memcpy(reason, ctx, strlen(ctx) + 1);
        have_reason = true;
        return -1;
    }
    snprintf(joined, sizeof(joined), "%s: %s", ctx, reason);
    joined[sizeof(reason) - 1] = '\0'; /* a reason longer than that is cut */
    memcpy(reason, joined, strlen(joined) + 1);
    return -1;
}

bool failed(void)
{
    return have_reason;
}

const char *fail_reason(void)
{
    return have_reason ? reason : "";
}

void fail_reset(void)
{
    have_reason = false;
    reason[0] = '\0';
}

/* oned strips the line and takes "ERROR:", "INFO:"... for a log line. */
static bool looks_like_log_line(const char *s)
{
    static const char *const prefixes[] = { "ERROR:", "WARN:", "INFO:", "DEBUG:" };

    for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
        if (starts_with(s, prefixes[i]))
            return true;
    return false;
}

int report_failure(void)
{
    char line[sizeof(reason) + 256];
    const char *text = reason + strspn(reason, " ");
    int n;

    /* A blank reason would leave the user an empty error, and one that looks
     * like a log line would go to oned.log: both get the action name. */
    if (!have_reason || !*text)
        n = snprintf(line, sizeof(line), "%s failed\n", log_action);
    else if (looks_like_log_line(text))
        n = snprintf(line, sizeof(line), "%s: %s\n", log_action, reason);
    else
        n = snprintf(line, sizeof(line), "%s\n", reason);
    if (n <= 0)
        return 1;
    if ((size_t)n >= sizeof(line))
        line[sizeof(line) - 2] = '\n';
    write_line(line, strnlen(line, sizeof(line)));
    return 1;
}

void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(fmt, ap, 0);
    va_end(ap);
    exit(report_failure());
}
