/*
 * standin_state.h - the oned stand-in's state directory, shared by the
 * server (oned-standin) and the shell tests' tool (standin-ctl).
 *
 *   DIR/vm/<id>.xml, DIR/image/<id>.xml, DIR/datastore/<id>.xml,
 *   DIR/user/<id>.xml   one document each, as oned's *.info returns it
 *   DIR/<kind>.lastoid  the highest id ever allocated (oned never reuses ids)
 *   DIR/users           name:password:uid:gid[:gname] per line; uid 0 or
 *                       gid 0 is an administrator (oneadmin)
 *   DIR/fail            failure injection, METHOD COUNT CODE MESSAGE per line
 *   DIR/calls.log       one line per call (see oned-standin.c)
 *   DIR/.lock           flock(2): one request, or one standin-ctl edit, at a time
 *
 * Every file is re-read when needed (tests edit them between calls) and
 * written beside its final name and renamed, so a reader never sees half a
 * document.
 */
#ifndef QCOW2C_STANDIN_STATE_H
#define QCOW2C_STANDIN_STATE_H

#include "util.h"

#include "sbuf.h"
#include "xml.h"

enum kind {
    KIND_VM,
    KIND_IMAGE,
    KIND_DATASTORE,
    KIND_USER,
};

/* "vm", "image", "datastore", "user" */
const char *kind_dir(enum kind k);
/* The root element: "VM", "IMAGE"... */
const char *kind_root(enum kind k);
int kind_parse(const char *s, enum kind *k);

/* ---- documents ---- */

/* The stored text, XML declaration and surrounding blanks removed; NULL when
 * there is no such object (errno ENOENT) or it cannot be read (reason
 * recorded). */
char *doc_read(const char *dir, enum kind k, int id);
/* Parsed; NULL when absent or broken. */
struct xml *doc_load(const char *dir, enum kind k, int id);
/* Checks that `text` is a document of kind `k`, then publishes it. */
int doc_write(const char *dir, enum kind k, int id, const char *text);
int doc_delete(const char *dir, enum kind k, int id);
/* The ids present, ascending. */
void doc_ids(const char *dir, enum kind k, int **ids, size_t *n);
/* A fresh id: above every id present and every id ever allocated. */
int doc_next_id(const char *dir, enum kind k);
/* Gives back the id of an allocation that failed, as PoolSQL::allocate
 * does (the last id one lower, never below 0). */
int doc_give_back_id(const char *dir, enum kind k, int id);

/* Editing the text of a document without re-serialising the rest, so that
 * oned's layout (CDATA sections, order) stays byte for byte. Each works on
 * the first direct child of the root element named `name` and returns a new
 * string, or NULL (reason recorded) when there is none. */
char *doc_replace_child(const char *text, const char *name, const char *xml);
/* Replaces the child's content by `value`, escaped. */
char *doc_set_child(const char *text, const char *name, const char *value);
char *doc_set_child_int(const char *text, const char *name, long long value);
/* Same, in place: *text is replaced; -1 when the child is missing. */
int doc_edit_child(char **text, const char *name, const char *value);
int doc_edit_child_int(char **text, const char *name, long long value);

/* ---- users ---- */

struct user {
    char *name;
    char *password;
    char *gname;
    int uid;
    int gid;
};

struct users {
    struct user *v;
    size_t nr, alloc;
};

/* DIR/users; a missing file is an empty list. */
int users_load(const char *dir, struct users *us);
void users_free(struct users *us);
const struct user *user_by_name(const struct users *us, const char *name);
const struct user *user_by_id(const struct users *us, int uid);
bool group_exists(const struct users *us, int gid);
/* The group's name: from the users file, else oned's defaults. */
char *group_name(const struct users *us, int gid);
bool user_is_admin(const struct user *u);

/* ---- failure injection ---- */

struct injection {
    char *code; /* "1024", "0x400", "fault", "hang", "drop" */
    char *message;
};

/* When DIR/fail holds a line for `method` with COUNT > 0, decrements it in
 * the file and fills *inj: returns 1. 0 when nothing applies, -1 on error. */
int inject_take(const char *dir, const char *method, struct injection *inj);
void injection_free(struct injection *inj);
int inject_add(const char *dir, const char *method, int count, const char *code,
               const char *message);

/* ---- the rest ---- */

/* Appends one line (a newline is added) to DIR/calls.log. */
int calls_append(const char *dir, const char *line);

/* Takes DIR/.lock; returns the descriptor to release with state_unlock. */
int state_lock(const char *dir);
/* Drops the XML declaration and the blanks around a document. */
void strip_document(struct sbuf *sb);
void state_unlock(int fd);

/* Writes `data` beside `path` and renames it into place. */
int write_atomic(const char *path, const char *data, size_t len);

#endif
