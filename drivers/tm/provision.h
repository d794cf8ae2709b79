/*
 * provision.h - what the actions that put a disk in place share: clone,
 * ln, mkimage, mkswap, context, resize (and delete's argument checks).
 *
 * Arguments: oned writes `fe:SOURCE host:<datastores>/<sys ds>/<vm>/disk.N
 * VM_ID DS_ID`; the helpers here refuse anything else with one reason.
 * Remote work: each helper is one command on the host (a fixed script whose
 * data are positional parameters), so an action stays at a handful of round
 * trips over its one ssh session.
 */
#ifndef QCOW2C_TM_PROVISION_H
#define QCOW2C_TM_PROVISION_H

#include "hostpath.h"
#include "tmctx.h"

/* A destination that must be host:<vm dir>/disk.N of the action's VM. */
int prov_disk_arg(const char *arg, int vmid, struct vm_path *vp);
/* A datastore id argument. */
int prov_ds_id(const char *arg, int *id);
/* The image argument `[host:]SOURCE`: an absolute clean path whose parent
 * directory is the datastore `ds_id` (<datastores>/<ds_id>/<name>), which
 * is what the datastore-root rewrite of the shared mode relies on. */
int prov_source(const char *arg, int ds_id, struct hostpath *hp);
/* An integer number of MB, > 0. */
int prov_size_mb(const char *arg, const char *what, uint64_t *mb);

/* What to do with <system ds dir>/.monitor (protocol trap 13): leave it,
 * remove it (shared system datastore: oned monitors it), or make it say
 * "ssh" (local system datastore: the host probes monitor it). */
enum prov_monitor { PROV_MONITOR_KEEP, PROV_MONITOR_OFF, PROV_MONITOR_SSH };

/* mkdir -p the VM directory (and `extra`, may be NULL) and sets .monitor;
 * one command. */
int prov_prepare(struct host *h, const struct vm_path *vp, enum prov_monitor m, const char *extra);

/* `link` becomes a symlink to `target` (new link beside, renamed over the
 * old one: never a moment without it); one command. */
int prov_symlink(struct host *h, const char *target, const char *link);

/*
 * Byte copy of `src` (symlinks followed) to `dst` on the host, keeping the
 * source's modification time. A regular `dst` with the source's time and
 * size (or size `grown_size` > 0, after a resize) is complete: it is left
 * alone and *part stays NULL. Otherwise the copy is made as *part, a name
 * of this attempt beside `dst` (the leftovers of earlier attempts go), and
 * the caller publishes it with prov_copy_finish, possibly after working on
 * it. Copy and publication are separate commands: an action killed during
 * the copy leaves a command on the host that finishes a file nobody will
 * rename, never one that renames a file over a later attempt's work.
 */
int prov_copy_start(struct host *h, const char *src, const char *dst, uint64_t grown_size,
                    char **part);
/* Flushes `part`, gives it the time of `src`, renames it to `dst`. */
int prov_copy_finish(struct host *h, const char *src, const char *part, const char *dst);
/* Both, nothing in between. */
int prov_copy(struct host *h, const char *src, const char *dst, uint64_t grown_size);

/* sync `tmp`, rename it to `final`, sync the directory: host_publish in one
 * command. */
int prov_publish(struct host *h, const char *tmp, const char *final);

/* The image header of `fe_path` read on the front-end when the file is
 * there (the datastore is mounted on the front-end), else of `host_path`
 * on the host. */
int prov_probe_source(struct host *h, const char *fe_path, const char *host_path,
                      struct image_info *ii);

/* Grows the image at `path` (through its symlink) to `size_mb`; nothing when
 * it already has that size. A bigger image is an error with `strict` (a
 * resize request), else left as is. `fmt` is what oned says the disk is:
 * raw is never probed (a guest may have written any header into it), any
 * other must match the header; NULL: the header's format. */
int prov_grow(struct host *h, const char *path, const char *fmt, uint64_t size_mb, bool sparse,
              bool strict);

/* mkimage and mkswap (mkimage.c): a new volatile disk.N of `size` MB in
 * `format` (raw, qcow2, or swap: raw with a swap signature). */
int prov_volatile(struct action_ctx *ctx, const char *size, const char *format, const char *dst);

#endif
