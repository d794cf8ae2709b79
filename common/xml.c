/* xml.c - the libxml2 module: parsing, XPath queries, escaping. */
#include "xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "log.h"
#include "num.h"

struct xml {
    xmlDocPtr doc;
    xmlXPathContextPtr ctx;
};

/* libxml2 prints parse errors to stderr by default, which oned would glue
 * into the failure reason; keep only the last one for our own message. */
static char last_error[256];

static void quiet_error(void *ctx, const char *msg, ...)
{
    va_list ap;

    (void)ctx;
    va_start(ap, msg);
    vsnprintf(last_error, sizeof(last_error), msg, ap);
    va_end(ap);
    last_error[strcspn(last_error, "\n")] = '\0';
}

static void init_once(void)
{
    static bool done;

    if (done)
        return;
    done = true;
    xmlInitParser();
    xmlSetGenericErrorFunc(NULL, quiet_error);
}

struct xml *xml_doc_parse(const char *buf, size_t len, const char *root)
{
    struct xml *x;
    xmlDocPtr doc;
    xmlNodePtr r;

    init_once();
    last_error[0] = '\0';
    if (len > INT_MAX) {
        fail("XML document too large");
        return NULL;
    }
    doc = xmlReadMemory(buf, (int)len, "noname.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                            XML_PARSE_NOCDATA);
    if (!doc) {
        const xmlError *e = xmlGetLastError();
        char msg[sizeof(last_error)];
        size_t n;

        /* libxml2's messages end with a newline: keep the first line only */
        snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : last_error);
        msg[strcspn(msg, "\n")] = '\0';
        n = strlen(msg);
        while (n && msg[n - 1] == ' ')
            msg[--n] = '\0';
        fail("malformed XML%s%s", n ? ": " : "", msg);
        return NULL;
    }
    if (doc->intSubset || doc->extSubset) {
        /* oned never sends a DTD. Its entities, even left unsubstituted, are
         * expanded when a node's text is read (1 GB from a 200 kB document). */
        fail("unexpected XML document: a DTD (<!DOCTYPE ...>) is not accepted");
        xmlFreeDoc(doc);
        return NULL;
    }
    r = xmlDocGetRootElement(doc);
    if (!r || (root && !xmlStrEqual(r->name, (const xmlChar *)root))) {
        fail("unexpected XML document: the root element is <%s>, not <%s>",
             r ? (const char *)r->name : "", root ? root : "");
        xmlFreeDoc(doc);
        return NULL;
    }
    x = xcalloc(1, sizeof(*x));
    x->doc = doc;
    x->ctx = xmlXPathNewContext(doc);
    if (!x->ctx)
        die("out of memory");
    return x;
}

void xml_free(struct xml *x)
{
    if (!x)
        return;
    xmlXPathFreeContext(x->ctx);
    xmlFreeDoc(x->doc);
    free(x);
}

static xmlXPathObjectPtr eval(const struct xml *x, const char *fmt, va_list ap)
{
    char expr[1024];
    xmlXPathObjectPtr o;

    if (vsnprintf(expr, sizeof(expr), fmt, ap) >= (int)sizeof(expr))
        die("internal error: XPath expression too long");
    o = xmlXPathEvalExpression((const xmlChar *)expr, x->ctx);
    if (!o)
        die("internal error: invalid XPath expression %s", expr);
    return o;
}

static char *node_text(xmlNodePtr n)
{
    xmlChar *c = xmlNodeGetContent(n);
    char *s = xstrdup(c ? (const char *)c : "");

    xmlFree(c);
    return s;
}

static char *vget(const struct xml *x, const char *fmt, va_list ap)
{
    xmlXPathObjectPtr o = eval(x, fmt, ap);
    char *s = NULL;

    if (o->type == XPATH_NODESET && o->nodesetval && o->nodesetval->nodeNr > 0)
        s = node_text(o->nodesetval->nodeTab[0]);
    else if (o->type == XPATH_STRING && o->stringval)
        s = xstrdup((const char *)o->stringval);
    xmlXPathFreeObject(o);
    return s;
}

char *xml_get(const struct xml *x, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = vget(x, fmt, ap);
    va_end(ap);
    return s;
}

char *xml_get_def(const struct xml *x, const char *def, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = vget(x, fmt, ap);
    va_end(ap);
    if (!s || !*s) {
        free(s);
        return def ? xstrdup(def) : NULL;
    }
    return s;
}

int xml_get_int(const struct xml *x, long long *out, const char *fmt, ...)
{
    char expr[1024];
    va_list ap;
    char *s;
    int64_t v;
    int rc = 0;

    va_start(ap, fmt);
    vsnprintf(expr, sizeof(expr), fmt, ap);
    va_end(ap);
    s = xml_get(x, "%s", expr);
    if (!s)
        rc = fail("%s is missing", expr);
    else if (parse_i64(s, INT64_MIN, INT64_MAX, &v) < 0)
        rc = fail("%s is not a number: '%s'", expr, s);
    else
        *out = v;
    free(s);
    return rc;
}

int xml_get_all(const struct xml *x, struct strvec *out, const char *fmt, ...)
{
    va_list ap;
    xmlXPathObjectPtr o;
    int n = 0;

    va_start(ap, fmt);
    o = eval(x, fmt, ap);
    va_end(ap);
    if (o->type == XPATH_NODESET && o->nodesetval) {
        for (int i = 0; i < o->nodesetval->nodeNr; i++) {
            char *s = node_text(o->nodesetval->nodeTab[i]);

            strvec_push(out, s);
            free(s);
            n++;
        }
    }
    xmlXPathFreeObject(o);
    return n;
}

int xml_count(const struct xml *x, const char *fmt, ...)
{
    va_list ap;
    xmlXPathObjectPtr o;
    int n = 0;

    va_start(ap, fmt);
    o = eval(x, fmt, ap);
    va_end(ap);
    if (o->type == XPATH_NODESET && o->nodesetval)
        n = o->nodesetval->nodeNr;
    xmlXPathFreeObject(o);
    return n;
}

char *xml_get_node(const struct xml *x, const char *fmt, ...)
{
    va_list ap;
    xmlXPathObjectPtr o;
    char *s = NULL;

    va_start(ap, fmt);
    o = eval(x, fmt, ap);
    va_end(ap);
    if (o->type == XPATH_NODESET && o->nodesetval && o->nodesetval->nodeNr > 0) {
        xmlBufferPtr b = xmlBufferCreate();

        if (!b)
            die("out of memory");
        xmlNodeDump(b, x->doc, o->nodesetval->nodeTab[0], 0, 0);
        s = xstrdup((const char *)xmlBufferContent(b));
        xmlBufferFree(b);
    }
    xmlXPathFreeObject(o);
    return s;
}

void xml_escape(struct sbuf *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': sbuf_adds(out, "&amp;"); break;
        case '<': sbuf_adds(out, "&lt;"); break;
        case '>': sbuf_adds(out, "&gt;"); break;
        case '"': sbuf_adds(out, "&quot;"); break;
        case '\'': sbuf_adds(out, "&apos;"); break;
        default: sbuf_addch(out, *s);
        }
    }
}

void xml_tmpl_begin(struct xml_tmpl *t, const char *root)
{
    sbuf_init(&t->buf);
    t->root = root;
    sbuf_addf(&t->buf, "<%s>", root);
}

void xml_tmpl_add(struct xml_tmpl *t, const char *name, const char *value)
{
    sbuf_addf(&t->buf, "<%s>", name);
    xml_escape(&t->buf, value);
    sbuf_addf(&t->buf, "</%s>", name);
}

void xml_tmpl_addf(struct xml_tmpl *t, const char *name, const char *fmt, ...)
{
    va_list ap;
    char *v;

    va_start(ap, fmt);
    v = xvasprintf(fmt, ap);
    va_end(ap);
    xml_tmpl_add(t, name, v);
    free(v);
}

void xml_tmpl_open(struct xml_tmpl *t, const char *name)
{
    sbuf_addf(&t->buf, "<%s>", name);
}

void xml_tmpl_close(struct xml_tmpl *t, const char *name)
{
    sbuf_addf(&t->buf, "</%s>", name);
}

char *xml_tmpl_end(struct xml_tmpl *t)
{
    sbuf_addf(&t->buf, "</%s>", t->root);
    return sbuf_detach(&t->buf);
}

static int set_nodes(xmlXPathObjectPtr o, const char *value)
{
    int n = 0;

    if (o->type != XPATH_NODESET || !o->nodesetval)
        return 0;
    for (int i = 0; i < o->nodesetval->nodeNr; i++) {
        xmlNodePtr node = o->nodesetval->nodeTab[i];
        xmlChar *enc = xmlEncodeSpecialChars(node->doc, (const xmlChar *)value);

        xmlNodeSetContent(node, enc);
        xmlFree(enc);
        n++;
    }
    return n;
}

int xml_set(struct xml *x, const char *value, const char *fmt, ...)
{
    char expr[1024];
    va_list ap;
    xmlXPathObjectPtr o;
    const char *slash;
    int n;

    va_start(ap, fmt);
    vsnprintf(expr, sizeof(expr), fmt, ap);
    va_end(ap);
    o = xmlXPathEvalExpression((const xmlChar *)expr, x->ctx);
    if (!o)
        return fail("invalid XPath expression %s", expr);
    n = set_nodes(o, value);
    xmlXPathFreeObject(o);
    if (n)
        return n;
    /* Create the element: the parent must exist, the last step be a name. */
    slash = strrchr(expr, '/');
    if (!slash || slash == expr || strpbrk(slash + 1, "[]@()*"))
        return fail("no element matches %s", expr);
    {
        char parent[1024];
        xmlNodePtr p;

        snprintf(parent, sizeof(parent), "%.*s", (int)(slash - expr), expr);
        o = xmlXPathEvalExpression((const xmlChar *)parent, x->ctx);
        if (!o || o->type != XPATH_NODESET || !o->nodesetval || !o->nodesetval->nodeNr) {
            xmlXPathFreeObject(o);
            return fail("no element matches %s", parent);
        }
        p = o->nodesetval->nodeTab[0];
        xmlNewTextChild(p, NULL, (const xmlChar *)slash + 1, (const xmlChar *)value);
        xmlXPathFreeObject(o);
    }
    return 1;
}

int xml_remove(struct xml *x, const char *fmt, ...)
{
    va_list ap;
    xmlXPathObjectPtr o;
    int n = 0;

    va_start(ap, fmt);
    o = eval(x, fmt, ap);
    va_end(ap);
    if (o->type == XPATH_NODESET && o->nodesetval) {
        for (int i = 0; i < o->nodesetval->nodeNr; i++) {
            xmlNodePtr node = o->nodesetval->nodeTab[i];

            xmlUnlinkNode(node);
            xmlFreeNode(node);
            o->nodesetval->nodeTab[i] = NULL;
            n++;
        }
    }
    xmlXPathFreeObject(o);
    return n;
}

int xml_append(struct xml *x, const struct xml *child, const char *fmt, ...)
{
    va_list ap;
    xmlXPathObjectPtr o;
    int n = 0;

    va_start(ap, fmt);
    o = eval(x, fmt, ap);
    va_end(ap);
    if (o->type == XPATH_NODESET && o->nodesetval && o->nodesetval->nodeNr > 0) {
        xmlNodePtr copy = xmlDocCopyNode(xmlDocGetRootElement(child->doc), x->doc, 1);

        if (!copy)
            die("out of memory");
        xmlAddChild(o->nodesetval->nodeTab[0], copy);
        n = 1;
    }
    xmlXPathFreeObject(o);
    return n ? 1 : fail("no element to append to");
}

char *xml_dump(const struct xml *x)
{
    xmlBufferPtr b = xmlBufferCreate();
    char *s;

    if (!b)
        die("out of memory");
    xmlNodeDump(b, x->doc, xmlDocGetRootElement(x->doc), 0, 0);
    s = xstrdup((const char *)xmlBufferContent(b));
    xmlBufferFree(b);
    return s;
}
