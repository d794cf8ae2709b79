/*
 * one.h - talking to oned over XML-RPC (xmlrpc-c). The only file that
 * includes xmlrpc-c.
 *
 * Endpoint and credentials are looked up as OpenNebula's own clients do
 * (protocol §7.1):
 *   endpoint: opts->endpoint, else $ONE_XMLRPC, else ~/.one/one_endpoint,
 *             else /var/lib/one/.one/one_endpoint, else
 *             http://localhost:2633/RPC2 (files: whole content, trailing
 *             blanks stripped);
 *   session:  the first line, trailing blanks/CR stripped, of opts->auth_file,
 *             else $ONE_AUTH when it names an existing file, else
 *             ~/.one/one_auth (home from the passwd entry of our uid, then
 *             $HOME), else /var/lib/one/.one/one_auth.
 *
 * Every response is decoded in one place (§7.2): [true, value, 0] is success;
 * [false, "message", code, ...] (3 or 5 elements, the 5th an <i8>) is a
 * failure whose message becomes the reason and whose code is kept; an
 * XML-RPC <fault> and transport errors (oned down, timeout) are failures with
 * code -1. Each call is bounded by opts->timeout_s.
 * xmlrpc-c's curl transport looks at the clock every 3 s only, so a call
 * that times out returns at its first look after timeout_s: up to 3 s late
 * (never early); on time when timeout_s is a multiple of 3, as the default 60 is.
 */
#ifndef QCOW2C_ONE_H
#define QCOW2C_ONE_H

#include "util.h"

/* oned's error codes (include/Request.h). */
enum one_error_code {
    ONE_SUCCESS = 0x0000,
    ONE_AUTHENTICATION = 0x0100,
    ONE_AUTHORIZATION = 0x0200,
    ONE_NO_EXISTS = 0x0400,
    ONE_ACTION = 0x0800,
    ONE_XML_RPC_API = 0x1000,
    ONE_INTERNAL = 0x2000,
    ONE_ALLOCATE = 0x4000,
    ONE_LOCKED = 0x8000,
    ONE_REPLICATION = 0x10000,
};

struct one_opts {
    const char *endpoint;  /* NULL/"" = look up */
    const char *auth_file; /* NULL/"" = look up */
    unsigned timeout_s;    /* 0 = 60 */
};

struct one_client;

/* Resolves endpoint and session (no network traffic yet). NULL with the
 * reason recorded when no credentials can be read. */
struct one_client *one_open(const struct one_opts *opts);
/* Same, with endpoint/auth/timeout from qcow2c.conf (ONE_XMLRPC, ONE_AUTH,
 * XMLRPC_TIMEOUT): what every driver action uses. */
struct one_client *one_open_driver(void);
void one_close(struct one_client *c);

const char *one_endpoint(const struct one_client *c);
/* The user part of the session ("oneadmin"). */
const char *one_user(const struct one_client *c);

/* oned's error code of the last failed call; -1 for a fault or transport
 * error; 0 after a success. */
int one_last_code(const struct one_client *c);

/* Typed calls. Returning documents: *xml is malloc'd. Returning ids: *id.
 * All return 0, or -1 with the reason recorded as
 * "oned refused <method>: <oned's message>" or
 * "cannot reach oned at <endpoint>: <transport error>". */
int one_vm_info(struct one_client *c, int id, char **xml);
int one_vm_update(struct one_client *c, int id, const char *tmpl, int append);
int one_vm_disksaveas(struct one_client *c, int vmid, int disk_id, const char *name,
                      const char *type, int snap_id, int *image_id);
int one_vm_allocate(struct one_client *c, const char *tmpl, bool hold, int *id);
/* filter: -4 mine+group, -3 mine, -2 all, -1 mine+group; state -1 all but DONE. */
int one_vmpool_info(struct one_client *c, int filter, int start, int end, int state,
                    char **xml);
int one_datastore_info(struct one_client *c, int id, char **xml);
int one_image_info(struct one_client *c, int id, char **xml);
int one_image_allocate(struct one_client *c, const char *tmpl, int ds_id,
                       bool skip_capacity_check, int *id);
int one_image_update(struct one_client *c, int id, const char *tmpl, int append);
int one_image_chown(struct one_client *c, int id, int uid, int gid);
int one_image_delete(struct one_client *c, int id, bool force);
int one_imagepool_info(struct one_client *c, int filter, int start, int end, char **xml);
/* one.user.info(-1): the caller's own user document. */
int one_user_info_self(struct one_client *c, char **xml);

#endif
