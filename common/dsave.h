/*
 * dsave.h - deferred disk saves (issue 5): the request a user records on a
 * VM with `onesnap create ... --deferred`, which the TM epilog (delete,
 * mvds) carries out when the VM is terminated.
 *
 * The request lives in the VM's USER_TEMPLATE, the only part of a VM a user
 * with MANAGE may change (one.vm.update), one vector attribute per disk:
 *
 *   QCOW2C_DEFERRED_SAVE_<DISK_ID> = [ NAME = "...", TYPE = "OS" (optional),
 *       PERSISTENT = "NO", DATASTORE_ID = "1", REQUESTED = "<epoch>",
 *       REQUESTED_BY = "<user>", STATE = "PENDING" ]
 *
 * One attribute per disk because one.vm.update append=1 merges by attribute
 * name (Template::merge erases every attribute of the new template's names,
 * then adds them): a request for disk 1 never touches disk 0's. An empty
 * vector (NAME = [ ]) only erases, which is how a request is withdrawn
 * without reading and rewriting the rest of the template (no lost update).
 *
 * STATE: PENDING (recorded), SAVING (the epilog started: SHUTDOWN is fixed
 * then, so that a recover --retry, whose history ACTION is RETRY, keeps the
 * kind of the first attempt), SAVED (IMAGE_ID, SAVED = epoch), SKIPPED
 * (REASON; a hard terminate with DEFERRED_SAVE_ON_HARD_TERMINATE=no).
 * PENDING and SAVING are pending: the disk must not go before its copy.
 *
 * Pure logic only (no oned, no files): onesnap and the TM share it and the
 * unit tests exercise it.
 */
#ifndef QCOW2C_DSAVE_H
#define QCOW2C_DSAVE_H

#include "util.h"

#include "xml.h"

#define DSAVE_ATTR_PREFIX "QCOW2C_DEFERRED_SAVE_"

enum dsave_state { DSAVE_NONE, DSAVE_PENDING, DSAVE_SAVING, DSAVE_SAVED, DSAVE_SKIPPED };
enum dsave_shutdown { DSAVE_SHUTDOWN_UNKNOWN, DSAVE_GRACEFUL, DSAVE_HARD };

struct dsave_req {
    int disk_id;
    enum dsave_state state;
    char *name;
    char *type; /* OS, DATABLOCK or CDROM; empty: the type of the disk's
                 * image, read when the copy is registered (oneadmin may
                 * read it, the user need not) */
    bool persistent;
    int ds_id;
    long long requested; /* epoch seconds */
    char *requested_by;
    enum dsave_shutdown shutdown;
    int image_id;    /* SAVED; -1 otherwise */
    long long saved; /* SAVED: epoch seconds; 0 otherwise */
    char *reason;    /* SKIPPED */
};

void dsave_init(struct dsave_req *r, int disk_id);
void dsave_release(struct dsave_req *r);

/* "QCOW2C_DEFERRED_SAVE_<disk_id>" (malloc'd). */
char *dsave_attr_name(int disk_id);

/* The request for disk_id in a VM document (/VM/USER_TEMPLATE). 0 with
 * state DSAVE_NONE when there is none; -1 with the reason recorded when the
 * attribute exists but is not a request qcow2c could have written. */
int dsave_read(const struct xml *vm, int disk_id, struct dsave_req *r);
bool dsave_is_pending(const struct dsave_req *r);

/* The XML template recording `r` for one.vm.update append=1 (malloc'd). */
char *dsave_template(const struct dsave_req *r);
/* The template withdrawing the request of disk_id (an empty vector). */
char *dsave_cancel_template(int disk_id);

/* The file name of the saved copy in the image datastore: derived from the
 * VM, the disk and the request's time only, so that a re-run of the epilog
 * finds its own copy (and the image registered with it) again. */
char *dsave_file_name(int vmid, int disk_id, long long requested);

/* How the VM was stopped, from its document: the last history record's
 * ACTION (terminate 27 graceful; terminate-hard 28, recover --delete 13,
 * delete-recreate 14 hard) and LCM_STATE 23 CLEANUP_DELETE (hard). */
enum dsave_shutdown dsave_shutdown_of(const struct xml *vm);

/* The wall clock, epoch seconds (the TM cannot include <time.h>: its
 * struct tm is the action's context there). */
long long dsave_now(void);

const char *dsave_state_str(enum dsave_state s);
const char *dsave_shutdown_str(enum dsave_shutdown s);
int dsave_state_parse(const char *s, enum dsave_state *out);
int dsave_shutdown_parse(const char *s, enum dsave_shutdown *out);

/* OS, DATABLOCK, CDROM (what one.vm.disksaveas accepts), upper case. */
bool dsave_type_valid(const char *type);
/* Image::str_to_type's numbers (0 OS, 1 CDROM, 2 DATABLOCK) to the name;
 * NULL for other types. */
const char *dsave_type_name(long long type);
/* A name oned would accept for an image (PoolObjectSQL::name_is_valid: not
 * empty, at most 128 bytes, no control character); -1 with the reason. */
int dsave_name_check(const char *name);

#endif
