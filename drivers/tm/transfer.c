/* transfer.c - helpers of mv, mvds, cpds and the migrate hooks; see transfer.h. */
#include "transfer.h"

#include "cleanup.h"
#include "log.h"

int xfer_shv(struct host *h, const char *what, unsigned timeout_s, struct sbuf *out,
             const char *script, const struct strvec *args)
{
    struct cmd c = CMD_INIT;
    int rc;

    strvec_pushl(&c.args, "sh", "-c", script, "sh", NULL);
    strvec_pushv(&c.args, args->v);
    c.what = what;
    c.timeout_s = timeout_s;
    rc = host_run(h, &c);
    if (rc == 0 && out)
        sbuf_add(out, c.out.buf, c.out.len);
    cmd_release(&c);
    return rc;
}

int xfer_sh(struct host *h, const char *what, unsigned timeout_s, struct sbuf *out,
            const char *script, ...)
{
    struct strvec args = STRVEC_INIT;
    const char *a;
    va_list ap;
    int rc;

    va_start(ap, script);
    while ((a = va_arg(ap, const char *)))
        strvec_push(&args, a);
    va_end(ap);
    rc = xfer_shv(h, what, timeout_s, out, script, &args);
    strvec_clear(&args);
    return rc;
}

void xfer_split0(const struct sbuf *in, struct strvec *out)
{
    size_t off = 0;

    while (off < in->len) {
        const char *rec = in->buf + off;
        size_t n = strnlen(rec, in->len - off);

        if (off + n == in->len)
            break; /* not terminated: cut short */
        strvec_push(out, rec);
        off += n + 1;
    }
}

static const char publish_script[] =
    "sync -- \"$1\" && mv -fT -- \"$1\" \"$2\" && sync -- \"${2%/*}\"";

int xfer_publish(struct host *h, const char *part, const char *final)
{
    _cleanup_free_ char *what = xasprintf("publishing %s", final);

    return xfer_sh(h, what, 0, NULL, publish_script, part, final, NULL);
}

void xfer_drop(struct host *h, const char *path)
{
    struct cmd c = CMD_INIT;

    /* Best effort, and silent: the reason already recorded is the one the
     * user must see. A host that is gone keeps the file; the next run of
     * the action (or DS rm) removes it. */
    strvec_pushl(&c.args, "rm", "-f", "--", path, NULL);
    if (host_run_status(h, &c) < 0 || c.status != 0)
        log_warn("could not remove %s on %s", path, host_name(h));
    cmd_release(&c);
}

/* "size:mtime:dev:inode" split at the n-th colon. */
static size_t prefix_len(const char *info, int fields)
{
    const char *p = info;

    for (int i = 0; i < fields && p; i++) {
        p = strchr(p, ':');
        if (p)
            p++;
    }
    return p ? (size_t)(p - info) : strlen(info);
}

bool xfer_same_data(const char *a, const char *b)
{
    size_t n;

    if (!a || !b || !*a)
        return false;
    n = prefix_len(a, 2);
    return n == prefix_len(b, 2) && strncmp(a, b, n) == 0;
}

bool xfer_same_file(const char *a, const char *b)
{
    const char *da, *db;

    if (!a || !b || !*a || !*b)
        return false;
    da = a + prefix_len(a, 2);
    db = b + prefix_len(b, 2);
    return *da && streq(da, db);
}
