/*
 * standin_state.c - the stand-in's state directory (see standin_state.h).
 */

#include "standin_state.h"

#include <dirent.h>
#include <sys/file.h>

#include "cleanup.h"
#include "fsutil.h"
#include "log.h"
#include "num.h"

/* A document or a users file is small; anything bigger is a test's mistake. */
#define MAX_STATE_FILE (16u << 20)

static const char *const kind_dirs[] = { "vm", "image", "datastore", "user" };
static const char *const kind_roots[] = { "VM", "IMAGE", "DATASTORE", "USER" };

const char *kind_dir(enum kind k)
{
    return kind_dirs[k];
}

const char *kind_root(enum kind k)
{
    return kind_roots[k];
}

int kind_parse(const char *s, enum kind *k)
{
    for (size_t i = 0; i < ARRAY_SIZE(kind_dirs); i++) {
        if (streq(s, kind_dirs[i])) {
            *k = (enum kind)i;
            return 0;
        }
    }
    return fail("unknown kind '%s' (vm, image, datastore or user)", s);
}

/* ---- files ---- */

int write_atomic(const char *path, const char *data, size_t len)
{
    _cleanup_free_ char *tmp = part_name(path);
    _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t done = 0;

    if (fd < 0)
        return fail_errno("cannot create %s", tmp);
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno("cannot write %s", tmp);
        done += (size_t)n;
    }
    return publish(tmp, path);
}

static char *doc_path(const char *dir, enum kind k, int id)
{
    return xasprintf("%s/%s/%d.xml", dir, kind_dir(k), id);
}

/* Without the XML declaration and the blanks around the document. */
void strip_document(struct sbuf *sb)
{
    size_t head = strspn(sb->buf, " \t\r\n");

    if (starts_with(sb->buf + head, "<?xml")) {
        const char *end = strstr(sb->buf + head, "?>");

        head = end ? (size_t)(end + 2 - sb->buf) : head;
        head += strspn(sb->buf + head, " \t\r\n");
    }
    sbuf_remove_head(sb, head);
    sbuf_rtrim(sb);
}

char *doc_read(const char *dir, enum kind k, int id)
{
    _cleanup_free_ char *path = doc_path(dir, k, id);
    struct sbuf sb = SBUF_INIT;

    if (sbuf_read_file(&sb, path, MAX_STATE_FILE) < 0) {
        int err = errno;

        sbuf_release(&sb);
        if (err != ENOENT) {
            errno = err;
            fail_errno("cannot read %s", path);
        }
        errno = err;
        return NULL;
    }
    strip_document(&sb);
    return sbuf_detach(&sb);
}

struct xml *doc_load(const char *dir, enum kind k, int id)
{
    _cleanup_free_ char *text = doc_read(dir, k, id);
    struct xml *x;

    if (!text)
        return NULL;
    x = xml_doc_parse(text, strlen(text), kind_root(k));
    if (!x)
        fail_context("%s/%s/%d.xml", dir, kind_dir(k), id);
    return x;
}

int doc_write(const char *dir, enum kind k, int id, const char *text)
{
    _cleanup_free_ char *sub = xasprintf("%s/%s", dir, kind_dir(k));
    _cleanup_free_ char *path = doc_path(dir, k, id);
    struct xml *x = xml_doc_parse(text, strlen(text), kind_root(k));

    if (!x)
        return fail_context("refusing to store %s %d", kind_dir(k), id);
    xml_free(x);
    if (mkdir_p(sub, 0755) < 0)
        return -1;
    return write_atomic(path, text, strlen(text));
}

int doc_delete(const char *dir, enum kind k, int id)
{
    _cleanup_free_ char *path = doc_path(dir, k, id);

    return unlink_if_exists(path);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return (x > y) - (x < y);
}

void doc_ids(const char *dir, enum kind k, int **ids, size_t *n)
{
    _cleanup_free_ char *sub = xasprintf("%s/%s", dir, kind_dir(k));
    DIR *d = opendir(sub);
    struct dirent *e;
    size_t alloc = 0;

    *ids = NULL;
    *n = 0;
    if (!d)
        return;
    while ((e = readdir(d))) {
        _cleanup_free_ char *base = NULL;
        int id;

        if (!ends_with(e->d_name, ".xml"))
            continue;
        base = xstrndup(e->d_name, strlen(e->d_name) - 4);
        if (parse_id(base, &id) < 0)
            continue;
        ALLOC_GROW(*ids, *n + 1, alloc);
        (*ids)[(*n)++] = id;
    }
    closedir(d);
    if (*n)
        qsort(*ids, *n, sizeof(**ids), cmp_int);
}

int doc_next_id(const char *dir, enum kind k)
{
    _cleanup_free_ char *path = xasprintf("%s/%s.lastoid", dir, kind_dir(k));
    _cleanup_free_ int *ids = NULL;
    struct sbuf sb = SBUF_INIT;
    char num[32];
    size_t n;
    int last = -1, next;

    if (sbuf_read_file(&sb, path, 64) == 0) {
        sbuf_rtrim(&sb);
        if (parse_id(sb.buf, &last) < 0)
            last = -1;
    }
    sbuf_release(&sb);
    doc_ids(dir, k, &ids, &n);
    if (n && ids[n - 1] > last)
        last = ids[n - 1];
    next = last + 1;
    snprintf(num, sizeof(num), "%d\n", next);
    if (write_atomic(path, num, strlen(num)) < 0)
        return -1;
    return next;
}

int doc_give_back_id(const char *dir, enum kind k, int id)
{
    _cleanup_free_ char *path = xasprintf("%s/%s.lastoid", dir, kind_dir(k));
    char num[32];

    snprintf(num, sizeof(num), "%d\n", id > 0 ? id - 1 : 0);
    return write_atomic(path, num, strlen(num));
}

/* ---- text-level edits ---- */

/* Skips a comment, CDATA section or processing instruction at p; NULL when
 * p starts none of them. */
static const char *skip_special(const char *p)
{
    static const struct {
        const char *open, *close;
    } special[] = { { "<!--", "-->" }, { "<![CDATA[", "]]>" }, { "<?", "?>" } };

    for (size_t i = 0; i < ARRAY_SIZE(special); i++) {
        if (starts_with(p, special[i].open)) {
            const char *end = strstr(p, special[i].close);

            return end ? end + strlen(special[i].close) : p + strlen(p);
        }
    }
    return NULL;
}

/* The end of the tag starting at p ('<'), past its '>', quotes respected. */
static const char *tag_end(const char *p, bool *self_closing)
{
    char quote = 0;

    for (p++; *p; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (*p == '>') {
            *self_closing = p[-1] == '/';
            return p + 1;
        }
    }
    *self_closing = false;
    return p;
}

static bool tag_named(const char *p, const char *name)
{
    size_t n = strlen(name);

    return strncmp(p + 1, name, n) == 0 && strchr(" \t\r\n/>", p[1 + n]);
}

/* [*start, *end) is the first direct child of the root named `name`. */
static int child_range(const char *text, const char *name, size_t *start, size_t *end)
{
    const char *p = text;
    const char *found = NULL;
    int depth = 0;

    while ((p = strchr(p, '<'))) {
        const char *skip = skip_special(p);
        bool self_closing;

        if (skip) {
            p = skip;
            continue;
        }
        if (p[1] == '/') {
            p = tag_end(p, &self_closing);
            if (--depth == 1 && found)
                break;
            if (depth <= 0)
                return fail("no element <%s> in the document", name);
            continue;
        }
        if (depth == 1 && !found && tag_named(p, name))
            found = p;
        {
            const char *q = tag_end(p, &self_closing);

            if (self_closing && depth == 1 && found == p) {
                p = q;
                break;
            }
            if (!self_closing)
                depth++;
            p = q;
        }
    }
    if (!found || !p)
        return fail("no element <%s> in the document", name);
    *start = (size_t)(found - text);
    *end = (size_t)(p - text);
    return 0;
}

char *doc_replace_child(const char *text, const char *name, const char *xml)
{
    struct sbuf sb = SBUF_INIT;
    size_t start = 0, end = 0;

    if (child_range(text, name, &start, &end) < 0)
        return NULL;
    sbuf_add(&sb, text, start);
    sbuf_adds(&sb, xml);
    sbuf_adds(&sb, text + end);
    return sbuf_detach(&sb);
}

char *doc_set_child(const char *text, const char *name, const char *value)
{
    struct sbuf el = SBUF_INIT;
    char *out;

    sbuf_addf(&el, "<%s>", name);
    xml_escape(&el, value);
    sbuf_addf(&el, "</%s>", name);
    out = doc_replace_child(text, name, el.buf);
    sbuf_release(&el);
    return out;
}

char *doc_set_child_int(const char *text, const char *name, long long value)
{
    char num[32];

    snprintf(num, sizeof(num), "%lld", value);
    return doc_set_child(text, name, num);
}

int doc_edit_child(char **text, const char *name, const char *value)
{
    char *out = doc_set_child(*text, name, value);

    if (!out)
        return -1;
    free(*text);
    *text = out;
    return 0;
}

int doc_edit_child_int(char **text, const char *name, long long value)
{
    char num[32];

    snprintf(num, sizeof(num), "%lld", value);
    return doc_edit_child(text, name, num);
}

/* ---- users ---- */

static int parse_user_line(char *line, struct user *u)
{
    char *f[6];
    size_t n = 0;
    char *p = line;

    while (n < ARRAY_SIZE(f)) {
        f[n++] = p;
        p = strchr(p, ':');
        if (!p)
            break;
        *p++ = '\0';
    }
    if ((n != 4 && n != 5) || p || !*f[0] || parse_id(f[2], &u->uid) < 0 ||
        parse_id(f[3], &u->gid) < 0)
        return -1;
    u->name = xstrdup(f[0]);
    u->password = xstrdup(f[1]);
    u->gname = n == 5 ? xstrdup(f[4]) : NULL;
    return 0;
}

int users_load(const char *dir, struct users *us)
{
    _cleanup_free_ char *path = xasprintf("%s/users", dir);
    struct sbuf sb = SBUF_INIT;
    char *line, *save = NULL;
    int lineno = 0, rc = 0;

    memset(us, 0, sizeof(*us));
    if (sbuf_read_file(&sb, path, MAX_STATE_FILE) < 0) {
        sbuf_release(&sb);
        return errno == ENOENT ? 0 : fail_errno("cannot read %s", path);
    }
    for (line = strtok_r(sb.buf, "\n", &save); line && !rc; line = strtok_r(NULL, "\n", &save)) {
        struct user u;

        lineno++;
        line[strcspn(line, "\r")] = '\0';
        if (!*line || *line == '#')
            continue;
        if (parse_user_line(line, &u) < 0) {
            rc = fail("%s:%d: not name:password:uid:gid[:gname]", path, lineno);
            break;
        }
        ALLOC_GROW(us->v, us->nr + 1, us->alloc);
        us->v[us->nr++] = u;
    }
    sbuf_release(&sb);
    return rc;
}

void users_free(struct users *us)
{
    for (size_t i = 0; i < us->nr; i++) {
        free(us->v[i].name);
        free(us->v[i].password);
        free(us->v[i].gname);
    }
    free(us->v);
    memset(us, 0, sizeof(*us));
}

const struct user *user_by_name(const struct users *us, const char *name)
{
    for (size_t i = 0; i < us->nr; i++)
        if (streq(us->v[i].name, name))
            return &us->v[i];
    return NULL;
}

const struct user *user_by_id(const struct users *us, int uid)
{
    for (size_t i = 0; i < us->nr; i++)
        if (us->v[i].uid == uid)
            return &us->v[i];
    return NULL;
}

/* oned always has groups 0 (oneadmin) and 1 (users). */
bool group_exists(const struct users *us, int gid)
{
    for (size_t i = 0; i < us->nr; i++)
        if (us->v[i].gid == gid)
            return true;
    return gid == 0 || gid == 1;
}

char *group_name(const struct users *us, int gid)
{
    for (size_t i = 0; i < us->nr; i++)
        if (us->v[i].gid == gid && us->v[i].gname)
            return xstrdup(us->v[i].gname);
    if (gid == 0)
        return xstrdup("oneadmin");
    if (gid == 1)
        return xstrdup("users");
    return xasprintf("group%d", gid);
}

/* RequestAttributes::is_admin: user 0 or a member of group 0. */
bool user_is_admin(const struct user *u)
{
    return u->uid == 0 || u->gid == 0;
}

/* ---- failure injection ---- */

struct fail_line {
    char *method;
    int count;
    char *code;
    char *message;
};

/* METHOD COUNT CODE [MESSAGE...]; -1 for anything else (kept verbatim). */
static int parse_fail_line(const char *line, struct fail_line *fl)
{
    char method[256], count[32], code[64];
    int off = 0;
    int64_t n;

    if (sscanf(line, "%255s %31s %63s %n", method, count, code, &off) < 3 ||
        parse_i64(count, 0, INT_MAX, &n) < 0)
        return -1;
    fl->method = xstrdup(method);
    fl->count = (int)n;
    fl->code = xstrdup(code);
    fl->message = xstrdup(off ? line + off : "");
    return 0;
}

static void fail_line_free(struct fail_line *fl)
{
    free(fl->method);
    free(fl->code);
    free(fl->message);
}

/* Finds the first applicable line and rewrites the file with its count
 * decremented; the other lines stay as they were. */
static int take_from(const char *path, char *text, const char *method, struct injection *inj)
{
    struct sbuf out = SBUF_INIT;
    char *line, *save = NULL;
    bool taken = false;
    int rc;

    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct fail_line fl;

        if (taken || parse_fail_line(line, &fl) < 0) {
            sbuf_addf(&out, "%s\n", line);
            continue;
        }
        if (streq(fl.method, method) && fl.count > 0) {
            taken = true;
            fl.count--;
            inj->code = xstrdup(fl.code);
            inj->message = xstrdup(fl.message);
        }
        sbuf_addf(&out, "%s %d %s %s\n", fl.method, fl.count, fl.code, fl.message);
        fail_line_free(&fl);
    }
    rc = taken ? write_atomic(path, out.buf, out.len) : 0;
    sbuf_release(&out);
    if (rc < 0)
        return -1;
    return taken ? 1 : 0;
}

int inject_take(const char *dir, const char *method, struct injection *inj)
{
    _cleanup_free_ char *path = xasprintf("%s/fail", dir);
    struct sbuf sb = SBUF_INIT;
    int rc;

    memset(inj, 0, sizeof(*inj));
    if (sbuf_read_file(&sb, path, MAX_STATE_FILE) < 0) {
        sbuf_release(&sb);
        return errno == ENOENT ? 0 : fail_errno("cannot read %s", path);
    }
    rc = take_from(path, sb.buf, method, inj);
    sbuf_release(&sb);
    return rc;
}

void injection_free(struct injection *inj)
{
    free(inj->code);
    free(inj->message);
    memset(inj, 0, sizeof(*inj));
}

int inject_add(const char *dir, const char *method, int count, const char *code,
               const char *message)
{
    _cleanup_free_ char *path = xasprintf("%s/fail", dir);
    struct sbuf sb = SBUF_INIT;
    int rc;

    if (strpbrk(method, " \t\n") || strpbrk(code, " \t\n") || strchr(message, '\n'))
        return fail("fail: METHOD and CODE are single words, MESSAGE one line");
    if (sbuf_read_file(&sb, path, MAX_STATE_FILE) < 0 && errno != ENOENT) {
        sbuf_release(&sb);
        return fail_errno("cannot read %s", path);
    }
    if (sb.len && sb.buf[sb.len - 1] != '\n')
        sbuf_addch(&sb, '\n');
    sbuf_addf(&sb, "%s %d %s %s\n", method, count, code, message);
    rc = write_atomic(path, sb.buf, sb.len);
    sbuf_release(&sb);
    return rc;
}

/* ---- log and lock ---- */

int calls_append(const char *dir, const char *line)
{
    _cleanup_free_ char *path = xasprintf("%s/calls.log", dir);
    _cleanup_free_ char *text = xasprintf("%s\n", line);
    _cleanup_close_ int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    size_t len = strlen(text);

    /* one write(2): O_APPEND keeps concurrent writers' lines whole */
    if (fd < 0 || write(fd, text, len) != (ssize_t)len)
        return fail_errno("cannot append to %s", path);
    return 0;
}

int state_lock(const char *dir)
{
    _cleanup_free_ char *path = xasprintf("%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

    if (fd < 0)
        return fail_errno("cannot open %s", path);
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            close(fd);
            return fail_errno("cannot lock %s", path);
        }
    }
    return fd;
}

void state_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

