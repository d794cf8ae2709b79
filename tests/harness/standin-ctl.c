/*
 * standin-ctl - sets up and inspects the state of oned-standin for shell
 * tests, with the same state-file code as the server.
 *
 *   standin-ctl DIR put KIND FILE.xml [--subst OLD=NEW]...
 *       stores the document (KIND vm, image, datastore or user) under its
 *       own /ROOT/ID, after replacing every OLD by NEW in its text; prints
 *       the id
 *   standin-ctl DIR get KIND ID [XPATH]
 *       prints the value XPATH selects (exit 1 when nothing), or the document;
 *       wrap numeric expressions in string(): string(count(/VM/...))
 *   standin-ctl DIR set KIND ID XPATH VALUE
 *       sets the text of what XPATH selects (created when only its last step
 *       is missing); "/ROOT/CHILD" keeps the rest of the document byte for
 *       byte, other paths re-serialise it
 *   standin-ctl DIR fail METHOD COUNT CODE MESSAGE...
 *       the next COUNT calls of METHOD fail (see oned-standin.c)
 *   standin-ctl DIR calls [METHOD]
 *       prints calls.log, or its lines for METHOD
 *
 * Every command runs under DIR/.lock, so it never interleaves with a request.
 */
#include "util.h"

#include <ctype.h>

#include "cleanup.h"
#include "log.h"
#include "num.h"
#include "sbuf.h"
#include "xml.h"

#include "fsutil.h"
#include "standin_state.h"

static NORETURN void usage(void)
{
    fputs("usage: standin-ctl DIR put KIND FILE.xml [--subst OLD=NEW]...\n"
          "       standin-ctl DIR get KIND ID [XPATH]\n"
          "       standin-ctl DIR set KIND ID XPATH VALUE\n"
          "       standin-ctl DIR fail METHOD COUNT CODE MESSAGE...\n"
          "       standin-ctl DIR calls [METHOD]\n",
          stderr);
    exit(2);
}

static void replace_all(struct sbuf *sb, const char *old, const char *new)
{
    struct sbuf out = SBUF_INIT;
    const char *p = sb->buf, *hit;
    size_t n = strlen(old);

    while ((hit = strstr(p, old))) {
        sbuf_add(&out, p, (size_t)(hit - p));
        sbuf_adds(&out, new);
        p = hit + n;
    }
    sbuf_adds(&out, p);
    sbuf_release(sb);
    *sb = out;
}

static int cmd_put(const char *dir, enum kind k, const char *file, char **subst, int nsubst)
{
    struct sbuf sb = SBUF_INIT;
    struct xml *x;
    long long id = -1;
    int rc;

    if (sbuf_read_file(&sb, file, 0) < 0)
        return fail_errno("cannot read %s", file);
    /* subst holds "--subst", "OLD=NEW" pairs */
    for (int i = 1; i < nsubst; i += 2) {
        _cleanup_free_ char *old = xstrdup(subst[i]);
        char *eq = strchr(old, '=');

        if (!eq || eq == old)
            return fail("--subst wants OLD=NEW, not '%s'", subst[i]);
        *eq = '\0';
        replace_all(&sb, old, eq + 1);
    }
    strip_document(&sb);
    x = xml_doc_parse(sb.buf, sb.len, kind_root(k));
    rc = x && xml_get_int(x, &id, "/%s/ID", kind_root(k)) == 0 && id >= 0 && id <= INT_MAX
             ? doc_write(dir, k, (int)id, sb.buf)
             : fail_context("%s", file);
    if (rc == 0)
        printf("%lld\n", id);
    xml_free(x);
    sbuf_release(&sb);
    return rc;
}

static int load_id(const char *s, int *id)
{
    if (parse_id(s, id) < 0)
        return fail("'%s' is not an object id", s);
    return 0;
}

static int cmd_get(const char *dir, enum kind k, const char *ids, const char *xpath)
{
    _cleanup_free_ char *text = NULL;
    struct xml *x;
    char *v;
    int id;

    if (load_id(ids, &id) < 0)
        return -1;
    text = doc_read(dir, k, id);
    if (!text)
        return failed() ? -1 : fail("no %s %d in %s", kind_dir(k), id, dir);
    if (!xpath) {
        puts(text);
        return 0;
    }
    x = xml_doc_parse(text, strlen(text), kind_root(k));
    if (!x)
        return -1;
    v = xml_get(x, "%s", xpath);
    xml_free(x);
    if (!v)
        return fail("%s selects nothing in %s %d", xpath, kind_dir(k), id);
    puts(v);
    free(v);
    return 0;
}

/* "/ROOT/NAME": a direct child, edited in the text. */
static const char *direct_child(enum kind k, const char *xpath)
{
    const char *root = kind_root(k);
    size_t n = strlen(root);
    const char *name = xpath + n + 2;

    if (xpath[0] != '/' || strncmp(xpath + 1, root, n) != 0 || xpath[n + 1] != '/' || !*name)
        return NULL;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return NULL;
    return name;
}

static int cmd_set(const char *dir, enum kind k, const char *ids, const char *xpath,
                   const char *value)
{
    _cleanup_free_ char *text = NULL, *out = NULL;
    const char *child = direct_child(k, xpath);
    struct xml *x;
    int id;

    if (load_id(ids, &id) < 0)
        return -1;
    text = doc_read(dir, k, id);
    if (!text)
        return failed() ? -1 : fail("no %s %d in %s", kind_dir(k), id, dir);
    if (child)
        out = doc_set_child(text, child, value);
    if (!out) {
        fail_reset();
        x = xml_doc_parse(text, strlen(text), kind_root(k));
        if (!x || xml_set(x, value, "%s", xpath) < 0) {
            xml_free(x);
            return -1;
        }
        out = xml_dump(x);
        xml_free(x);
    }
    return doc_write(dir, k, id, out);
}

static int cmd_fail(const char *dir, int argc, char **argv)
{
    struct sbuf msg = SBUF_INIT;
    int64_t count;
    int rc;

    if (argc < 3 || parse_i64(argv[1], 0, INT_MAX, &count) < 0)
        usage();
    for (int i = 3; i < argc; i++)
        sbuf_addf(&msg, "%s%s", i > 3 ? " " : "", argv[i]);
    rc = inject_add(dir, argv[0], (int)count, argv[2], msg.buf);
    sbuf_release(&msg);
    return rc;
}

/* The lines of calls.log whose third field is `method` (all when NULL). */
static int cmd_calls(const char *dir, const char *method)
{
    _cleanup_free_ char *path = xasprintf("%s/calls.log", dir);
    struct sbuf sb = SBUF_INIT;
    char *line, *save = NULL;

    if (sbuf_read_file(&sb, path, 0) < 0) {
        sbuf_release(&sb);
        return errno == ENOENT ? 0 : fail_errno("cannot read %s", path);
    }
    for (line = strtok_r(sb.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *f = strchr(line, '\t');

        f = f ? strchr(f + 1, '\t') : NULL;
        if (!method || (f && starts_with(f + 1, method) && f[1 + strlen(method)] == '\t'))
            puts(line);
    }
    sbuf_release(&sb);
    return 0;
}

static int run(const char *dir, int argc, char **argv)
{
    const char *cmd = argv[0];
    enum kind k;

    if (streq(cmd, "fail"))
        return cmd_fail(dir, argc - 1, argv + 1);
    if (streq(cmd, "calls")) {
        if (argc > 2)
            usage();
        return cmd_calls(dir, argc == 2 ? argv[1] : NULL);
    }
    if (argc < 3 || kind_parse(argv[1], &k) < 0)
        usage();
    if (streq(cmd, "put")) {
        for (int i = 3; i < argc; i += 2)
            if (!streq(argv[i], "--subst") || i + 1 >= argc)
                usage();
        return cmd_put(dir, k, argv[2], argv + 3, argc - 3);
    }
    if (streq(cmd, "get") && argc <= 4)
        return cmd_get(dir, k, argv[2], argc == 4 ? argv[3] : NULL);
    if (streq(cmd, "set") && argc == 5)
        return cmd_set(dir, k, argv[2], argv[3], argv[4]);
    usage();
}

int main(int argc, char **argv)
{
    int lock, rc;

    log_setup("standin-ctl", -1);
    if (argc < 3)
        usage();
    if (mkdir_p(argv[1], 0755) < 0 || (lock = state_lock(argv[1])) < 0)
        return report_failure();
    rc = run(argv[1], argc - 2, argv + 2);
    state_unlock(lock);
    return rc < 0 ? report_failure() : 0;
}
