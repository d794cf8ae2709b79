/*
 * snapshot.h - what the disk-snapshot actions share: snap_create,
 * snap_create_live, snap_revert, snap_delete (and their .ssh variants).
 *
 * The chain of a disk lives in one snapshot directory (layout.h, protocol
 * §2.2): disk.N.snap for a non-persistent disk or in .ssh mode, with
 * relative names (links and backing files say "disk.N.snap/K"), or
 * SOURCE.snap beside a persistent image in shared mode, with absolute names.
 * File K holds snapshot K; disk.N points to the active file, the highest
 * number; K.current holds the path of the file that holds snapshot K when
 * that is another file (written after a live blockcommit, and by
 * snap_create when oned skipped snapshot ids after a failure).
 *
 * snap_scan() reads the whole directory in one command on the host: every
 * entry, its kind, link target, the first 4 KiB of each regular file (the
 * qcow2 header, probed natively) and the content of K.current files. The
 * actions then decide in C and apply their changes with one batch of
 * operations (snap_ops), each file built beside its name and renamed, so a
 * typical action is two commands on the host.
 */
#ifndef QCOW2C_TM_SNAPSHOT_H
#define QCOW2C_TM_SNAPSHOT_H

#include "layout.h"
#include "tmctx.h"

/* The LCM states of the disk-snapshot actions (include/VirtualMachine.h).
 * tmctx.h's LCM_DISK_SNAPSHOT (59) is in fact DISK_SNAPSHOT_DELETE. */
enum {
    LCM_DISK_SNAPSHOT_POWEROFF = 51,
    LCM_DISK_SNAPSHOT_REVERT_POWEROFF = 52,
    LCM_DISK_SNAPSHOT_DELETE_POWEROFF = 53,
    LCM_DISK_SNAPSHOT_SUSPENDED = 54,
    LCM_DISK_SNAPSHOT_DELETE_SUSPENDED = 56,
    LCM_DISK_SNAPSHOT_RUNNING = 57,        /* snap_create_live */
    LCM_DISK_SNAPSHOT_DELETE_RUNNING = 59, /* snap_delete of a running VM */
};

/* Notes qcow2c leaves in the snapshot directory while a change that takes
 * several steps is under way (hidden: OpenNebula's scripts list with ls). */
#define SNAP_NOTE_PREFIX ".qcow2c-"

/* One entry of the snapshot directory. */
struct snap_file {
    char *name;
    int id;                 /* the number its name is, -1 for other names */
    char kind;              /* 'F' file, 'L' symlink, 'D' directory, 'O' other */
    char *target;           /* symlink target as stored */
    bool image;             /* a regular file (links followed) whose header was read */
    struct image_info ii;
    int backing;            /* the numbered file its backing name designates, -1 none/other */
    char *current;          /* K.current and notes: the text it holds */
    char *head;             /* the first bytes read (up to 4 KiB) */
    size_t head_len;
};

struct snap_disk {
    struct tm *t;
    struct vm_path vp;      /* HOST:VM_DIR/disk.N */
    int snap_id;
    struct host *h;
    char *format;           /* DISK/FORMAT */
    bool qcow2;             /* a chain of overlays; otherwise full copies */
    bool image_ds;          /* the chain is SOURCE.snap (absolute names) */
    struct layout l;        /* the chain's disk (disk.N or SOURCE) and its .snap dir */
    /* filled by snap_scan */
    char link_kind;         /* what disk.N is: 'N' missing, 'L', 'F'... */
    char *link_target;
    char *link_path;        /* where disk.N points, absolute, normalised */
    int link_id;            /* the numbered file disk.N points to, -1 */
    struct snap_file *f;
    size_t nf;
    bool self_link;         /* <snap dir>/<name>.snap -> . is there */
};

/* Reads argv (HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID), DISK[DISK_ID=N]
 * {SOURCE,CLONE,FORMAT} from oned, and decides where the chain is. */
int snap_open(struct snap_disk *d, struct tm *t, struct action_ctx *ctx);
void snap_close(struct snap_disk *d);

/* Reads disk.N and the snapshot directory (one command). */
int snap_scan(struct snap_disk *d);
struct snap_file *snap_get(const struct snap_disk *d, int id);
struct snap_file *snap_get_named(const struct snap_disk *d, const char *name);
/* The numbered files whose backing file is `id` (at most `max`); the count. */
size_t snap_children(const struct snap_disk *d, int id, int *out, size_t max);
/* The number of the file that holds snapshot `id` (id.current followed), -1
 * when there is none; *via_current tells whether id.current was used. */
int snap_holder(const struct snap_disk *d, int id, bool *via_current);
/* A path (absolute, or relative to `base_dir`) as a numbered file of the
 * snapshot directory: its number, or -1. */
int snap_path_id(const struct snap_disk *d, const char *base_dir, const char *path);

/* The name links and backing files use for file `id`: "disk.N.snap/K", or
 * "<SOURCE>.snap/K" for a chain beside the image. */
char *snap_name(const struct snap_disk *d, int id);
/* Its absolute path. */
char *snap_path(const struct snap_disk *d, int id);
/* "<snap dir>/<id>.current" */
char *snap_current_path(const struct snap_disk *d, int id);

/*
 * The disk's current state, offline: the file disk.N points to, followed up
 * through overlays that an interrupted snapshot left on it (an active file
 * never has an overlay of its own; one that does was the base of a snapshot
 * whose link was never moved). Refuses a missing or broken link and a chain
 * that is not linear above it.
 */
int snap_top(struct snap_disk *d, int *top);
/* qemu-img check of file `id` (one command, for files an earlier run may
 * have left half-made); a file that fails is no longer taken as an image. */
bool snap_sound(struct snap_disk *d, int id);
/* Whether overlay `id` holds data of its own (qemu-img map; offline only). */
int snap_has_data(struct snap_disk *d, int id, bool *data);

/*
 * A batch of changes applied by one command on the host, in order, stopping
 * at the first failure: optionally a command first (qemu-img create or
 * rebase), then renames, links, small files, removals and directory syncs.
 */
struct snap_ops {
    struct strvec pre;      /* the command, or empty */
    unsigned pre_timeout;
    struct strvec ops;
};
void snap_ops_init(struct snap_ops *o);
void snap_ops_release(struct snap_ops *o);
/* Takes the argv and time limit of `c` (built by qemu_img.h). */
void snap_ops_cmd(struct snap_ops *o, struct cmd *c);
/* fsync tmp, rename it to final */
void snap_ops_publish(struct snap_ops *o, const char *tmp, const char *final);
/* link -> target, replaced by rename */
void snap_ops_link(struct snap_ops *o, const char *target, const char *link);
/* path gets `data` (through path.part) */
void snap_ops_put(struct snap_ops *o, const char *path, const char *data);
void snap_ops_rm(struct snap_ops *o, const char *path);
void snap_ops_sync(struct snap_ops *o, const char *dir);
void snap_ops_mkdir(struct snap_ops *o, const char *dir);
bool snap_ops_empty(const struct snap_ops *o);
int snap_ops_run(struct snap_disk *d, struct snap_ops *o, const char *what);

/* A full copy of `src` (symlinks followed) at `dst` on the host, through
 * dst.part, with the source's modification time. With `keep`, a regular
 * `dst` with the source's time (to the nanosecond) and size is complete and
 * kept (*kept). One command. */
int snap_copy(struct snap_disk *d, const char *src, const char *dst, bool keep, bool *kept);

/*
 * Making snapshot Q = d->snap_id of a qcow2 chain whose current state is
 * file `top` (snap_top, or the domain's active layer): `prep` gets what
 * goes before the switch (the overlay Q+1 on top, built beside and renamed;
 * Q.current -> top when oned skipped ids so that top is not file Q; the
 * self link), `fin` the switch of disk.N to Q+1. *taken: top is already
 * Q+1, an overlay on the file of snapshot Q (only the link may be missing).
 * A file Q+1 that is not a sound qcow2 file (half-made) is rebuilt.
 * Refused: a top newer than Q+1, a file Q+1 that is a sound qcow2 file but
 * not an overlay on top (it is not ours: it could hold data).
 */
int snap_plan_create(struct snap_disk *d, int top, struct snap_ops *prep, struct snap_ops *fin,
                     bool *taken);

/*
 * libvirt on the host. DEPLOY_ID is the domain (its UUID under OpenNebula's
 * KVM driver). Every virsh call runs under timeout(1) on the host, so a hung
 * libvirt or guest agent never holds the action nor loses its ssh session.
 */
struct dom_layer {
    char *path;             /* <source file=...> as libvirt shows it */
    char *index;            /* its index attribute, or NULL */
    int id;                 /* the numbered file it is, -1 */
};
struct dom_disk {
    char *deploy_id;
    char *target;
    struct strvec targets;  /* every <disk> target of the domain */
    struct dom_layer *layer; /* [0] the active layer, then its backing chain */
    size_t nl;
};
/* virsh dumpxml DEPLOY_ID, the chain of the disk `target`. */
int dom_read(struct snap_disk *d, const char *deploy_id, const char *target,
             struct dom_disk *dom);
void dom_release(struct dom_disk *dom);
/* The position of file `id` in the chain (0 = active layer), -1. */
int dom_find(const struct dom_disk *dom, int id);
/* The argument naming layer i for --top/--base: "vda[3]", or its path. */
char *dom_layer_arg(const struct dom_disk *dom, size_t i);
/* c->args = timeout LIMIT VIRSH -c LIBVIRT_URI SUB; c->timeout_s covers it. */
void virsh_cmd(struct cmd *c, unsigned limit, const char *sub);
/* A DEPLOY_ID virsh can take as a domain name. */
int check_deploy_id(const char *id);

#endif
