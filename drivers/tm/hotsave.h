/*
 * hotsave.h - the hot disk save-as: cpds of the current state of a disk of
 * a RUNNING VM (LCM 26 HOTPLUG_SAVEAS, SNAP_ID -1), and what it shares with
 * cpds.c (the cold save-as).
 *
 * One instant for every block, the guest quiet for milliseconds, not for
 * the copy: the guest's file systems are frozen through its agent (bounded;
 * thawed after any attempt), a temporary external overlay is put on top of
 * the disk (`virsh snapshot-create-as --disk-only --atomic --no-metadata`),
 * the guest is thawed, the layers below the overlay (frozen from then on)
 * are copied, checked and compared, the copy is published, and the overlay
 * is merged back into the layer it sits on (`virsh blockcommit --active
 * --shallow --base <that layer> --pivot`) and removed. The overlay is
 * <snap dir>/hotsave.<K>.<pid>.<ms> (disk.N.snap, or SOURCE.snap for a
 * persistent disk in shared mode; K the snapshot file disk.N pointed to):
 * never a number, so never one of oned's snapshot files. While the domain
 * writes the overlay disk.N points to it, so that an action that dies
 * before the merge leaves the guest's newest writes under disk.N; the merge
 * points it back to K in the same command as the pivot. What was achieved
 * (filesystem-frozen or crash-consistent, the instant in UTC, the VM and
 * disk) goes into the new image's template.
 */
#ifndef QCOW2C_TM_HOTSAVE_H
#define QCOW2C_TM_HOTSAVE_H

#include "tmctx.h"

/* A save-as in progress (cpds.c fills it from argv and oned). */
struct cpds {
    struct tm *t;
    struct vm_path vp;
    char *target; /* NEW_SOURCE, normalised (front-end view: the lock) */
    char *dst;    /* NEW_SOURCE as HOST sees it */
    char *part;
    char *src; /* the file to copy, as HOST sees it */
    char *format;
    int snap_id;
    bool running; /* LCM 26: the source is read with -U (force-share) */
    bool hot;     /* running and SNAP_ID -1: the hot path */
    bool sparse;
    struct host *h;
};

/* cpds.c: copies c->src (a chain nothing writes) to c->part in c->format,
 * flushed; with `verify`, qemu-img check and a comparison with the source
 * (cmp for byte copies). c->part is removed when any of it fails. */
int cpds_write_part(struct cpds *c, bool verify);

/* The hot path, c->h set, the locks held. Succeeds only with NEW_SOURCE
 * published, recorded in oned and the domain back on its own disk. */
int hotsave(struct cpds *c);

/* The first name component of the temporary overlay. */
#define HOTSAVE_PREFIX "hotsave."

#endif
