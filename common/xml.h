/*
 * xml.h - reading oned's XML documents (libxml2), and writing templates.
 *
 * This is the only file that includes libxml2. Documents are parsed without
 * network access and without entity substitution, then queried with XPath:
 *
 *     struct xml *vm = xml_doc_parse(buf, len, "VM");
 *     char *tgt = xml_get(vm, "/VM/TEMPLATE/DISK[DISK_ID=%d]/TARGET", disk_id);
 *
 * The format arguments are for numbers only: string data is never spliced
 * into an XPath expression. Parsing is lenient about schema (real oned output
 * strays from the XSDs) and strict about well-formedness.
 */
#ifndef QCOW2C_XML_H
#define QCOW2C_XML_H

#include "sbuf.h"
#include "strvec.h"

struct xml;

/* Parses a document whose root element must be `root` (NULL: any). */
struct xml *xml_doc_parse(const char *buf, size_t len, const char *root);
void xml_free(struct xml *x);

/* Text of the first node the expression selects, or NULL (missing). An
 * empty element gives "". */
char *xml_get(const struct xml *x, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Same, with `def` (copied) when missing or empty. */
char *xml_get_def(const struct xml *x, const char *def, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
/* Integer value; -1 with the reason recorded when missing or not a number. */
int xml_get_int(const struct xml *x, long long *out, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Text of every selected node, in document order. */
int xml_get_all(const struct xml *x, struct strvec *out, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
/* Number of nodes selected. */
int xml_count(const struct xml *x, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* The first selected element re-serialised, or NULL. */
char *xml_get_node(const struct xml *x, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* Editing, for the test harness and the oned stand-in. xml_set replaces the
 * text of every selected element, creating the last path step under its
 * parent when nothing is selected and the parent exists; xml_remove deletes
 * every selected node. Both return the number of nodes changed, -1 when the
 * element could not be created. */
int xml_set(struct xml *x, const char *value, const char *fmt, ...) PRINTF_LIKE(3, 4);
int xml_remove(struct xml *x, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Appends a copy of document `child`'s root as the last child of the first
 * element `fmt` selects. */
int xml_append(struct xml *x, const struct xml *child, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* The document serialised, without XML declaration. */
char *xml_dump(const struct xml *x);

/* Appends `s` with &, <, >, " and ' escaped. */
void xml_escape(struct sbuf *out, const char *s);

/*
 * A flat OpenNebula template in XML form, e.g. for one.image.allocate:
 * <TEMPLATE><NAME>x</NAME>...</TEMPLATE>. Values are escaped.
 */
struct xml_tmpl {
    struct sbuf buf;
    const char *root;
};
void xml_tmpl_begin(struct xml_tmpl *t, const char *root);
void xml_tmpl_add(struct xml_tmpl *t, const char *name, const char *value);
void xml_tmpl_addf(struct xml_tmpl *t, const char *name, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
/* A vector attribute (NAME = [ ... ]): the xml_tmpl_add calls between
 * open and close are its pairs. */
void xml_tmpl_open(struct xml_tmpl *t, const char *name);
void xml_tmpl_close(struct xml_tmpl *t, const char *name);
/* Returns the finished document (caller frees). */
char *xml_tmpl_end(struct xml_tmpl *t);

#endif
