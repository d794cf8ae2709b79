/*
 * standin_tmpl.c - OpenNebula templates (see standin_tmpl.h).
 */

#include "standin_tmpl.h"

#include <ctype.h>

#include "log.h"

/* ---- the model ---- */

static void pair_free(struct tmpl_pair *p)
{
    free(p->name);
    free(p->value);
}

static void attr_free(struct tmpl_attr *a)
{
    free(a->name);
    free(a->value);
    for (size_t i = 0; i < a->npairs; i++)
        pair_free(&a->pairs[i]);
    free(a->pairs);
}

void tmpl_free(struct tmpl *t)
{
    for (size_t i = 0; i < t->nr; i++)
        attr_free(&t->attrs[i]);
    free(t->attrs);
    t->attrs = NULL;
    t->nr = t->alloc = 0;
}

static char *upper_dup(const char *s, size_t n)
{
    char *u = xstrndup(s, n);

    for (char *p = u; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return u;
}

/* After the last attribute whose name sorts <= name: a multimap insert. */
static struct tmpl_attr *insert_slot(struct tmpl *t, const char *name)
{
    size_t at = t->nr;

    while (at > 0 && strcmp(t->attrs[at - 1].name, name) > 0)
        at--;
    ALLOC_GROW(t->attrs, t->nr + 1, t->alloc);
    memmove(&t->attrs[at + 1], &t->attrs[at], (t->nr - at) * sizeof(*t->attrs));
    t->nr++;
    memset(&t->attrs[at], 0, sizeof(t->attrs[at]));
    return &t->attrs[at];
}

/* Takes ownership of name and value. */
static void add_single(struct tmpl *t, char *name, char *value)
{
    struct tmpl_attr *a = insert_slot(t, name);

    a->name = name;
    a->value = value;
}

static struct tmpl_attr *add_vector(struct tmpl *t, char *name)
{
    struct tmpl_attr *a = insert_slot(t, name);

    a->name = name;
    return a;
}

static struct tmpl_pair *pair_find(const struct tmpl_attr *a, const char *key)
{
    for (size_t i = 0; i < a->npairs; i++)
        if (streq(a->pairs[i].name, key))
            return &a->pairs[i];
    return NULL;
}

/* Sorted insert; an existing key keeps its first value, as std::map::insert. */
static void pair_insert(struct tmpl_attr *a, char *key, char *value)
{
    size_t at = a->npairs;

    if (pair_find(a, key)) {
        free(key);
        free(value);
        return;
    }
    while (at > 0 && strcmp(a->pairs[at - 1].name, key) > 0)
        at--;
    ALLOC_GROW(a->pairs, a->npairs + 1, a->apairs);
    memmove(&a->pairs[at + 1], &a->pairs[at], (a->npairs - at) * sizeof(*a->pairs));
    a->npairs++;
    a->pairs[at].name = key;
    a->pairs[at].value = value;
}

const char *tmpl_get(const struct tmpl *t, const char *name)
{
    for (size_t i = 0; i < t->nr; i++)
        if (t->attrs[i].value && streq(t->attrs[i].name, name))
            return t->attrs[i].value;
    return NULL;
}

bool tmpl_has(const struct tmpl *t, const char *name)
{
    for (size_t i = 0; i < t->nr; i++)
        if (streq(t->attrs[i].name, name))
            return true;
    return false;
}

const char *tmpl_vector_get(const struct tmpl_attr *a, const char *key)
{
    const struct tmpl_pair *p = pair_find(a, key);

    return p ? p->value : NULL;
}

struct tmpl_attr *tmpl_find_vector(struct tmpl *t, const char *name, const char *key,
                                   const char *value)
{
    for (size_t i = 0; i < t->nr; i++) {
        struct tmpl_attr *a = &t->attrs[i];

        if (!a->value && streq(a->name, name) && streq(tmpl_vector_get(a, key), value))
            return a;
    }
    return NULL;
}

void tmpl_vector_set(struct tmpl_attr *a, const char *key, const char *value)
{
    struct tmpl_pair *p = pair_find(a, key);

    if (p) {
        free(p->value);
        p->value = xstrdup(value);
        return;
    }
    pair_insert(a, xstrdup(key), xstrdup(value));
}

void tmpl_vector_unset(struct tmpl_attr *a, const char *key)
{
    struct tmpl_pair *p = pair_find(a, key);
    size_t i;

    if (!p)
        return;
    i = (size_t)(p - a->pairs);
    pair_free(p);
    memmove(&a->pairs[i], &a->pairs[i + 1], (a->npairs - i - 1) * sizeof(*a->pairs));
    a->npairs--;
}

void tmpl_erase(struct tmpl *t, const char *name)
{
    size_t w = 0;

    for (size_t i = 0; i < t->nr; i++) {
        if (streq(t->attrs[i].name, name))
            attr_free(&t->attrs[i]);
        else
            t->attrs[w++] = t->attrs[i];
    }
    t->nr = w;
}

void tmpl_set(struct tmpl *t, const char *name, const char *value)
{
    tmpl_erase(t, name);
    add_single(t, xstrdup(name), xstrdup(value));
}

void tmpl_take(struct tmpl *to, struct tmpl *from, size_t i)
{
    struct tmpl_attr moved = from->attrs[i];

    memmove(&from->attrs[i], &from->attrs[i + 1], (from->nr - i - 1) * sizeof(*from->attrs));
    from->nr--;
    *insert_slot(to, moved.name) = moved;
}

static void copy_attr(struct tmpl *t, const struct tmpl_attr *a)
{
    struct tmpl_attr *c;

    if (a->value) {
        add_single(t, xstrdup(a->name), xstrdup(a->value));
        return;
    }
    c = add_vector(t, xstrdup(a->name));
    for (size_t i = 0; i < a->npairs; i++)
        pair_insert(c, xstrdup(a->pairs[i].name), xstrdup(a->pairs[i].value));
}

void tmpl_merge(struct tmpl *dst, const struct tmpl *src)
{
    for (size_t i = 0; i < src->nr; i++)
        tmpl_erase(dst, src->attrs[i].name);
    for (size_t i = 0; i < src->nr; i++)
        if (src->attrs[i].value || src->attrs[i].npairs)
            copy_attr(dst, &src->attrs[i]);
}

const char *tmpl_check_restricted(struct tmpl *new_t, const struct tmpl *base, bool append,
                                  const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *nv = tmpl_get(new_t, names[i]), *bv = tmpl_get(base, names[i]);

        if (nv && !streq(nv, bv ? bv : ""))
            return names[i];
        if (!nv && bv && !append)
            tmpl_set(new_t, names[i], bv);
    }
    return NULL;
}

/* ---- XML ---- */

void cdata(struct sbuf *out, const char *value)
{
    const char *end;

    sbuf_adds(out, "<![CDATA[");
    /* "]]>" cannot appear inside a CDATA section: split it over two */
    while ((end = strstr(value, "]]>"))) {
        sbuf_add(out, value, (size_t)(end - value) + 2);
        sbuf_adds(out, "]]><![CDATA[");
        value = end + 2;
    }
    sbuf_adds(out, value);
    sbuf_adds(out, "]]>");
}

static void element(struct sbuf *out, const char *name, const char *value)
{
    sbuf_addf(out, "<%s>", name);
    cdata(out, value);
    sbuf_addf(out, "</%s>", name);
}

void tmpl_attr_to_xml(const struct tmpl_attr *a, struct sbuf *out)
{
    if (a->value) {
        element(out, a->name, a->value);
        return;
    }
    sbuf_addf(out, "<%s>", a->name);
    for (size_t j = 0; j < a->npairs; j++)
        element(out, a->pairs[j].name, a->pairs[j].value);
    sbuf_addf(out, "</%s>", a->name);
}

void tmpl_to_xml(const struct tmpl *t, const char *root, struct sbuf *out)
{
    sbuf_addf(out, "<%s>", root);
    for (size_t i = 0; i < t->nr; i++)
        tmpl_attr_to_xml(&t->attrs[i], out);
    sbuf_addf(out, "</%s>", root);
}

/* `path` is an XPath constant of ours, never request data. */
void tmpl_from_doc(struct tmpl *t, const struct xml *doc, const char *path)
{
    int n = xml_count(doc, "%s/*", path);

    for (int i = 1; i <= n; i++) {
        char *name = xml_get(doc, "name(%s/*[%d])", path, i);
        int sub = xml_count(doc, "%s/*[%d]/*", path, i);
        char *up = upper_dup(name, strlen(name));
        struct tmpl_attr *v;

        free(name);
        if (!sub) {
            add_single(t, up, xml_get_def(doc, "", "%s/*[%d]", path, i));
            continue;
        }
        v = add_vector(t, up);
        for (int j = 1; j <= sub; j++) {
            char *key = xml_get(doc, "name(%s/*[%d]/*[%d])", path, i, j);

            pair_insert(v, upper_dup(key, strlen(key)),
                        xml_get_def(doc, "", "%s/*[%d]/*[%d]", path, i, j));
            free(key);
        }
    }
}

/* ---- the template syntax (template_parser.l / template_syntax.y) ---- */

struct lexer {
    const char *s;
    size_t pos;
    int line;
    size_t line_start;
    char *err;
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_var(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* An unquoted value: [^=#[:blank:]\n,\[\]]+ */
static bool is_bare(char c)
{
    return c && !strchr("=# \t\n,[]", c);
}

static void advance(struct lexer *lx, size_t n)
{
    for (size_t i = 0; i < n && lx->s[lx->pos]; i++) {
        if (lx->s[lx->pos] == '\n') {
            lx->line++;
            lx->line_start = lx->pos + 1;
        }
        lx->pos++;
    }
}

static int syntax_error(struct lexer *lx, const char *what)
{
    int col = (int)(lx->pos - lx->line_start);

    if (!lx->err)
        lx->err = xasprintf("Parse error: syntax error, %s at line %d, columns %d:%d", what,
                            lx->line, col, col + 1);
    return -1;
}

static void skip_blanks(struct lexer *lx, bool newlines)
{
    while (is_blank(lx->s[lx->pos]) || (newlines && lx->s[lx->pos] == '\n'))
        advance(lx, 1);
}

/* Blank space, empty lines and # comments between attributes. */
static void skip_space_and_comments(struct lexer *lx)
{
    for (;;) {
        skip_blanks(lx, true);
        if (lx->s[lx->pos] != '#')
            return;
        while (lx->s[lx->pos] && lx->s[lx->pos] != '\n')
            advance(lx, 1);
    }
}

static char *read_var(struct lexer *lx)
{
    size_t start = lx->pos;

    while (is_var(lx->s[lx->pos]))
        advance(lx, 1);
    if (lx->pos == start) {
        syntax_error(lx, "unexpected character, expecting VARIABLE");
        return NULL;
    }
    return upper_dup(lx->s + start, lx->pos - start);
}

/* The value after '=': a quoted string (\" is a quote) or a bare word. A
 * line holding "]]>" is refused, as the CCDATA rule of the lexer does. */
static char *read_value(struct lexer *lx)
{
    const char *line_end = strchr(lx->s + lx->pos, '\n');
    const char *cd = strstr(lx->s + lx->pos, "]]>");
    struct sbuf v = SBUF_INIT;

    if (cd && (!line_end || cd < line_end)) {
        syntax_error(lx, "unexpected CCDATA");
        return NULL;
    }
    if (lx->s[lx->pos] == '"') {
        advance(lx, 1);
        for (;;) {
            char c = lx->s[lx->pos];

            if (!c) {
                sbuf_release(&v);
                syntax_error(lx, "unterminated quoted string");
                return NULL;
            }
            if (c == '\\' && lx->s[lx->pos + 1] == '"') {
                sbuf_addch(&v, '"');
                advance(lx, 2);
                continue;
            }
            advance(lx, 1);
            if (c == '"')
                return sbuf_detach(&v);
            sbuf_addch(&v, c);
        }
    }
    while (is_bare(lx->s[lx->pos])) {
        sbuf_addch(&v, lx->s[lx->pos]);
        advance(lx, 1);
    }
    if (!v.len) {
        sbuf_release(&v);
        syntax_error(lx, "unexpected end of value, expecting STRING or OBRACKET");
        return NULL;
    }
    return sbuf_detach(&v);
}

/* [ A = "1", B = 2 ]; the '[' is consumed. */
static int read_vector(struct lexer *lx, struct tmpl_attr *a)
{
    skip_blanks(lx, true);
    if (lx->s[lx->pos] == ']') {
        advance(lx, 1);
        return 0;
    }
    for (;;) {
        char *key, *value;

        skip_blanks(lx, true);
        key = read_var(lx);
        if (!key)
            return -1;
        skip_blanks(lx, false);
        if (lx->s[lx->pos] != '=') {
            free(key);
            return syntax_error(lx, "unexpected token, expecting EQUAL");
        }
        advance(lx, 1);
        skip_blanks(lx, false);
        value = read_value(lx);
        if (!value) {
            free(key);
            return -1;
        }
        pair_insert(a, key, value);
        skip_blanks(lx, true);
        if (lx->s[lx->pos] == ']') {
            advance(lx, 1);
            return 0;
        }
        if (lx->s[lx->pos] != ',')
            return syntax_error(lx, "unexpected token, expecting COMMA or CBRACKET");
        advance(lx, 1);
    }
}

/* One NAME = value | NAME = [ ... ] | NAME =\n */
static int read_attribute(struct lexer *lx, struct tmpl *t)
{
    char *name = read_var(lx);
    char *value;

    if (!name)
        return -1;
    skip_blanks(lx, false);
    if (lx->s[lx->pos] != '=') {
        free(name);
        return syntax_error(lx, "unexpected token, expecting EQUAL or EQUAL_EMPTY");
    }
    advance(lx, 1);
    skip_blanks(lx, false);
    if (lx->s[lx->pos] == '\n') {
        add_single(t, name, xstrdup(""));
        return 0;
    }
    if (lx->s[lx->pos] == '[') {
        advance(lx, 1);
        return read_vector(lx, add_vector(t, name));
    }
    value = read_value(lx);
    if (!value) {
        free(name);
        return -1;
    }
    add_single(t, name, value);
    return 0;
}

static int parse_syntax(struct tmpl *t, const char *text, char **err)
{
    struct lexer lx = { .s = text, .line = 1 };

    for (;;) {
        skip_space_and_comments(&lx);
        if (!lx.s[lx.pos])
            return 0;
        if (read_attribute(&lx, t) < 0) {
            *err = lx.err;
            return -1;
        }
    }
}

int tmpl_parse(struct tmpl *t, const char *text, char **err)
{
    struct xml *doc;

    *err = NULL;
    if (text[0] != '<')
        return parse_syntax(t, text, err);
    doc = xml_doc_parse(text, strlen(text), NULL);
    if (!doc) {
        fail_reset();
        *err = xstrdup("Parse error: XML Template malformed.");
        return -1;
    }
    tmpl_from_doc(t, doc, "/*");
    xml_free(doc);
    return 0;
}

