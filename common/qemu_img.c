/* qemu_img.c - qemu-img command lines; see qemu_img.h. */
#include "qemu_img.h"

#include <inttypes.h>

#include "config.h"
#include "log.h"
#include "num.h"

static void start(struct cmd *c, const char *sub, bool copies)
{
    strvec_pushl(&c->args, config_str("QEMU_IMG"), sub, NULL);
    c->timeout_s = copies ? config_uint("COPY_TIMEOUT") : config_uint("TIMEOUT");
}

static void qcow2_options(struct cmd *c, const char *fmt)
{
    const char *o = config_str("QCOW2_OPTIONS");

    if (streq(fmt, "qcow2") && *o)
        strvec_pushl(&c->args, "-o", o, NULL);
}

void qi_create(struct cmd *c, const char *fmt, const char *path, uint64_t size_mb,
               unsigned flags)
{
    start(c, "create", false);
    strvec_pushl(&c->args, "-q", "-f", fmt, NULL);
    qcow2_options(c, fmt);
    if (flags & QI_PREALLOC)
        strvec_pushl(&c->args, "-o", "preallocation=falloc", NULL);
    strvec_push(&c->args, path);
    strvec_pushf(&c->args, "%" PRIu64 "M", size_mb);
}

void qi_create_overlay(struct cmd *c, const char *path, const char *backing,
                       const char *backing_fmt)
{
    start(c, "create", false);
    strvec_pushl(&c->args, "-q", "-f", "qcow2", "-F", backing_fmt, "-b", backing, NULL);
    qcow2_options(c, "qcow2");
    strvec_push(&c->args, path);
}

void qi_convert(struct cmd *c, const char *src, const char *src_fmt, const char *dst,
                const char *out_fmt, unsigned flags)
{
    start(c, "convert", true);
    strvec_pushl(&c->args, "-q", "-f", src_fmt, "-O", out_fmt, NULL);
    if (flags & QI_FORCE_SHARE)
        strvec_push(&c->args, "-U");
    if (flags & QI_PREALLOC)
        strvec_pushl(&c->args, "-S", "0", NULL);
    qcow2_options(c, out_fmt);
    strvec_pushl(&c->args, src, dst, NULL);
}

void qi_check(struct cmd *c, const char *path, const char *fmt, unsigned flags)
{
    start(c, "check", true);
    strvec_pushl(&c->args, "-q", "-f", fmt, NULL);
    if (flags & QI_FORCE_SHARE)
        strvec_push(&c->args, "-U");
    strvec_push(&c->args, path);
}

bool qi_check_ok(int status)
{
    /* Leaked clusters waste space but lose no data; raw has no metadata. */
    return status == 0 || status == 3 || status == 63;
}

void qi_compare(struct cmd *c, const char *a, const char *fmt_a, const char *b,
                const char *fmt_b, unsigned flags)
{
    start(c, "compare", true);
    strvec_pushl(&c->args, "-q", "-f", fmt_a, "-F", fmt_b, NULL);
    if (flags & QI_FORCE_SHARE)
        strvec_push(&c->args, "-U");
    strvec_pushl(&c->args, a, b, NULL);
}

void qi_rebase(struct cmd *c, const char *path, const char *backing, const char *backing_fmt,
               bool unsafe, unsigned flags)
{
    start(c, "rebase", !unsafe);
    strvec_pushl(&c->args, "-q", "-f", "qcow2", NULL);
    if (unsafe)
        strvec_push(&c->args, "-u");
    if (flags & QI_FORCE_SHARE)
        strvec_push(&c->args, "-U");
    if (*backing)
        strvec_pushl(&c->args, "-F", backing_fmt, NULL);
    strvec_pushl(&c->args, "-b", backing, path, NULL);
}

void qi_resize(struct cmd *c, const char *path, const char *fmt, uint64_t size_mb,
               unsigned flags)
{
    start(c, "resize", false);
    strvec_pushl(&c->args, "-q", "-f", fmt, NULL);
    if (flags & QI_PREALLOC)
        strvec_push(&c->args, "--preallocation=falloc");
    strvec_push(&c->args, path);
    strvec_pushf(&c->args, "%" PRIu64 "M", size_mb);
}

void qi_info(struct cmd *c, const char *path, unsigned flags)
{
    start(c, "info", false);
    if (flags & QI_FORCE_SHARE)
        strvec_push(&c->args, "-U");
    strvec_push(&c->args, path);
}

int qi_parse_info(const char *out, char **format, uint64_t *virtual_size)
{
    const char *f = strstr(out, "\nfile format: ");
    const char *v = strstr(out, "\nvirtual size: ");
    char num[32];

    if (starts_with(out, "file format: "))
        f = out - 1;
    if (!f || !v)
        return fail("unexpected qemu-img info output");
    f += 14;
    *format = xstrndup(f, strcspn(f, " \n"));
    v = strchr(v, '(');
    if (!v || sscanf(v, "(%31[0-9] bytes)", num) != 1 ||
        parse_u64(num, UINT64_MAX, virtual_size) < 0) {
        free(*format);
        *format = NULL;
        return fail("unexpected qemu-img info output: no virtual size");
    }
    return 0;
}
