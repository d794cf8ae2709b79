/*
 * ds-msg - builds the stdin oned's datastore driver gives a DS action.
 *
 *   ds-msg TEMPLATE.xml [--subst OLD=NEW]... [--set XPATH=VALUE]...
 *          [--del XPATH]... [--raw]
 *
 * TEMPLATE.xml is a DS_DRIVER_ACTION_DATA captured from a real oned
 * (tests/fixtures/oned/ds/<action>/<n>/stdin.decoded.xml). --subst rewrites
 * text everywhere (e.g. the datastore location into the test's directory),
 * --set and --del edit elements. The result goes to stdout base64-encoded on
 * one line without newline, exactly as oned sends it (protocol §5.1), or as
 * XML with --raw.
 */
#include "util.h"

#include "b64.h"
#include "cleanup.h"
#include "log.h"
#include "sbuf.h"
#include "xml.h"

static void replace_all(struct sbuf *s, const char *old, const char *new)
{
    struct sbuf out = SBUF_INIT;
    const char *p = s->buf, *hit;
    size_t ol = strlen(old);

    if (!ol)
        return;
    while ((hit = strstr(p, old))) {
        sbuf_add(&out, p, (size_t)(hit - p));
        sbuf_adds(&out, new);
        p = hit + ol;
    }
    sbuf_adds(&out, p);
    sbuf_release(s);
    *s = out;
}

static int split(const char *arg, char **left, char **right)
{
    const char *eq = strchr(arg, '=');

    if (!eq)
        return fail("expected X=Y, got '%s'", arg);
    *left = xstrndup(arg, (size_t)(eq - arg));
    *right = xstrdup(eq + 1);
    return 0;
}

int main(int argc, char **argv)
{
    struct sbuf text = SBUF_INIT, out = SBUF_INIT;
    struct xml *x;
    bool raw = false;
    int i;

    log_setup("ds-msg", -1);
    if (argc < 2 || sbuf_read_file(&text, argv[1], 0) < 0) {
        fprintf(stderr, "usage: ds-msg TEMPLATE.xml [--subst A=B] [--set XPATH=V] [--del XPATH] [--raw]\n");
        return 2;
    }
    for (i = 2; i < argc; i++)
        if (streq(argv[i], "--subst") && i + 1 < argc) {
            char *a, *b;

            if (split(argv[++i], &a, &b) < 0)
                return report_failure();
            replace_all(&text, a, b);
            free(a);
            free(b);
        }
    x = xml_doc_parse(text.buf, text.len, NULL);
    if (!x)
        return report_failure();
    for (i = 2; i < argc; i++) {
        if (streq(argv[i], "--subst")) {
            i++;
        } else if (streq(argv[i], "--raw")) {
            raw = true;
        } else if (streq(argv[i], "--set") && i + 1 < argc) {
            char *path, *value;

            if (split(argv[++i], &path, &value) < 0 || xml_set(x, value, "%s", path) < 0)
                return report_failure();
            free(path);
            free(value);
        } else if (streq(argv[i], "--del") && i + 1 < argc) {
            xml_remove(x, "%s", argv[++i]);
        } else {
            fprintf(stderr, "ds-msg: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    {
        _cleanup_free_ char *doc = xml_dump(x);

        if (raw)
            fputs(doc, stdout);
        else {
            b64_encode(doc, strlen(doc), &out);
            fwrite(out.buf, 1, out.len, stdout);
        }
    }
    xml_free(x);
    sbuf_release(&text);
    sbuf_release(&out);
    return 0;
}
