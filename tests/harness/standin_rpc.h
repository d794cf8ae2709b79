/*
 * standin_rpc.h - one XML-RPC request inside the oned stand-in: typed
 * parameters, oned's answers and its authorization rules.
 *
 * Answers as src/rm/xml-rpc/RequestXRPC.cc makes them (protocol §7.2):
 *   success  [true, value, 0]
 *   failure  [false, "[method] message", code, resp_id, <i8> -1]
 * and, where xmlrpc-c's paramList would throw (a missing or mistyped
 * parameter), an XML-RPC fault with code -501 and xmlrpc-c's text.
 */
#ifndef QCOW2C_STANDIN_RPC_H
#define QCOW2C_STANDIN_RPC_H

#include "util.h"

#include <xmlrpc-c/base.h>

#include "sbuf.h"
#include "standin_state.h"

/* oned's error codes (include/Request.h). */
enum {
    E_AUTHENTICATION = 0x0100,
    E_AUTHORIZATION = 0x0200,
    E_NO_EXISTS = 0x0400,
    E_ACTION = 0x0800,
    E_RPC_API = 0x1000,
    E_INTERNAL = 0x2000,
    E_ALLOCATE = 0x4000,
};

/* AuthRequest operations. */
enum op {
    OP_USE,
    OP_MANAGE,
    OP_ADMIN,
};

struct req {
    const char *dir;
    const char *method;
    xmlrpc_env env; /* a fault raised by a handler */
    xmlrpc_value *params;
    int nparams;
    struct users users;
    const struct user *user; /* the authenticated caller */
    bool admin;
    xmlrpc_value *answer; /* the array to send */
    struct sbuf outcome;  /* for calls.log: "ok 14", "error 512", "fault -501" */
};

/* ---- parameters (index 0 is the session) ---- */

/* Each returns -1 after raising xmlrpc-c's fault when parameter i is
 * missing or of another type. */
int param_int(struct req *r, int i, int *out);
int param_bool(struct req *r, int i, bool *out);
/* *out is malloc'd. */
int param_str(struct req *r, int i, char **out);
/* Optional parameters: `def` when absent, a fault when mistyped. */
int param_opt_int(struct req *r, int i, int def, int *out);
int param_opt_bool(struct req *r, int i, bool def, bool *out);
/* The parameters after the session, rendered on one line for calls.log. */
void params_render(struct req *r, struct sbuf *out);

/* ---- answers ---- */

void reply_int(struct req *r, int value);
void reply_str(struct req *r, const char *value);
/* [false, "[method] <msg>", code, resp_id, <i8>-1]. */
void reply_error(struct req *r, int code, int resp_id, const char *fmt, ...) PRINTF_LIKE(4, 5);
/* The same with `msg` sent as it is. */
void reply_error_text(struct req *r, int code, int resp_id, const char *msg);
/* "Error getting <object> [id]." */
void reply_no_exists(struct req *r, const char *object, int id);
/* "User [uid] : <why>." */
void reply_denied(struct req *r, int resp_id, const char *why);
/* An XML-RPC fault. */
void reply_fault(struct req *r, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* ---- authorization ---- */

/* Whether the caller may do `op` on the object `doc` (root element `root`):
 * administrators always; others through the PERMISSIONS bits for owner,
 * group and others, as oned's ACL manager checks them. */
bool may(const struct req *r, const struct xml *doc, const char *root, enum op op);
/* Checks and answers "User [N] : Not authorized to perform OP ROOT [id]."
 * when refused; returns false then. */
bool authorize(struct req *r, const struct xml *doc, const char *root, enum op op, int id,
               int resp_id);

/* Whether a pool listing with `filter` (-4 group, -3 mine, -2 all, -1 mine
 * and group, >= 0 that user's) shows the object, as PoolSQL::usr_filter. */
bool pool_shows(const struct req *r, const struct xml *doc, const char *root, int filter);
/* The ids of a listing: descending (API_LIST_ORDER DESC), start/end as
 * PoolSQL::oid_filter and the LIMIT of PoolSharedAPI::dump. `keep` decides
 * the rest. */
void pool_select(struct req *r, enum kind k, int start, int end,
                 bool (*keep)(struct req *r, const struct xml *doc, void *ctx), void *ctx,
                 struct sbuf *out,
                 void (*emit)(struct sbuf *out, const char *text, const struct xml *doc));

/* ---- objects ---- */

/* The integer at `path` (an XPath constant of ours), or `def`. */
long long doc_ll(const struct xml *doc, const char *path, long long def);

/* "virtual machine", "image"...: RequestLogger::object_name. */
const char *object_name(enum kind k);
/* Loads object `id` with its text, or answers NO_EXISTS and returns NULL. */
struct xml *object_load(struct req *r, enum kind k, int id, char **text);
/* Stores a changed document; answers INTERNAL and returns -1 on failure. */
int object_store(struct req *r, enum kind k, int id, const char *text);
/* Adds or removes `image_id` in the datastore's IMAGES. */
int datastore_images(struct req *r, int ds_id, int image_id, bool add);
/* <PERMISSIONS> for oned's DEFAULT_UMASK 177: owner use and manage. */
void default_permissions(struct sbuf *out);
/* PoolObjectSQL::name_is_valid; NULL when valid, else the message. */
const char *name_invalid(const char *name, char *buf, size_t len);

#endif
