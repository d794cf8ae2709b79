/*
 * standin_tmpl.h - OpenNebula templates for the oned stand-in.
 *
 * oned keeps a template as a multimap sorted by attribute name (names upper
 * case), each attribute either single (NAME = "value") or a vector of unique
 * sub-attributes, themselves sorted (NAME = [ A = "1", B = "2" ]). Its XML
 * form puts every value in CDATA. This model keeps the same order so that a
 * template the stand-in rewrites serialises as oned's would.
 *
 * Text accepted (Template::parse_str_or_xml): a string whose first byte is
 * '<' is an XML template (any root; elements with element children are
 * vectors); anything else is the template syntax of
 * src/parsers/template_parser.l: KEY = value | KEY = "quoted \" value"
 * (multi-line) | KEY = [ A = "1", B = 2 ] | KEY = (empty), # comments.
 */
#ifndef QCOW2C_STANDIN_TMPL_H
#define QCOW2C_STANDIN_TMPL_H

#include "util.h"

#include "sbuf.h"
#include "xml.h"

struct tmpl_pair {
    char *name;
    char *value;
};

struct tmpl_attr {
    char *name;
    char *value;             /* single attribute; NULL for a vector */
    struct tmpl_pair *pairs; /* vector: sorted by name, names unique */
    size_t npairs, apairs;
};

struct tmpl {
    struct tmpl_attr *attrs; /* sorted by name; equal names keep their order */
    size_t nr, alloc;
};

#define TMPL_INIT  \
    {              \
        NULL, 0, 0 \
    }

void tmpl_free(struct tmpl *t);

/* Parses `text` into `t` (added to what it holds). 0, or -1 with *err set to
 * oned's message ("Parse error: ..."), malloc'd. */
int tmpl_parse(struct tmpl *t, const char *text, char **err);
/* Reads the element `path` (an internal constant XPath such as
 * "/VM/USER_TEMPLATE") of a stored document. */
void tmpl_from_doc(struct tmpl *t, const struct xml *doc, const char *path);

/* The value of the first single attribute `name`, or NULL. */
const char *tmpl_get(const struct tmpl *t, const char *name);
/* The first vector `name` whose sub-attribute `key` equals `value`. */
struct tmpl_attr *tmpl_find_vector(struct tmpl *t, const char *name, const char *key,
                                   const char *value);
const char *tmpl_vector_get(const struct tmpl_attr *a, const char *key);
void tmpl_vector_set(struct tmpl_attr *a, const char *key, const char *value);
void tmpl_vector_unset(struct tmpl_attr *a, const char *key);
bool tmpl_has(const struct tmpl *t, const char *name);

/* Removes every attribute `name`. */
void tmpl_erase(struct tmpl *t, const char *name);
/* Replaces every attribute `name` by one single attribute. */
void tmpl_set(struct tmpl *t, const char *name, const char *value);
/* Moves the attribute at index i of `from` into `to` (sorted insert). */
void tmpl_take(struct tmpl *to, struct tmpl *from, size_t i);

/* Template::merge: attributes of `src` replace those of the same name in
 * `dst`; an empty vector only deletes. */
void tmpl_merge(struct tmpl *dst, const struct tmpl *src);

/* Template::check_restricted for the single attributes `names`: the first
 * one `new_t` sets to another value than `base` has, or NULL. In replace
 * mode (!append) those `new_t` leaves out are copied from `base`: a user
 * cannot drop what an administrator set. */
const char *tmpl_check_restricted(struct tmpl *new_t, const struct tmpl *base, bool append,
                                  const char *const *names, size_t n);

/* <root><NAME><![CDATA[value]]></NAME>...</root>, as oned's to_xml. */
void tmpl_to_xml(const struct tmpl *t, const char *root, struct sbuf *out);
/* One attribute, as inside tmpl_to_xml. */
void tmpl_attr_to_xml(const struct tmpl_attr *a, struct sbuf *out);
/* A value in CDATA, as one_util::escape_xml. */
void cdata(struct sbuf *out, const char *value);

#endif
