/*
 * snapimg.h - the disk snapshots `onesnap list|show|delete|boot` deal with:
 * the images a disk save made, told apart from the rest of the image pool
 * by the attributes each kind of save leaves in the image's template:
 *
 *   deferred  QCOW2C_SAVED_VM_ID, _DISK_ID, _AT, QCOW2C_CONSISTENCY
 *             (drivers/tm/deferred.c, at the VM's terminate)
 *   hot       SAVED_VM_ID (oned's disk-saveas) and HOT_SAVE_INSTANT,
 *             HOT_SAVE_CONSISTENCY (drivers/tm/hotsave.c, a running VM)
 *   saveas    SAVED_VM_ID only: oned's disk-saveas of a powered-off VM, or
 *             of a running one by another driver
 *
 * Pure logic over oned's documents (no oned): unit-tested.
 */
#ifndef QCOW2C_SNAPIMG_H
#define QCOW2C_SNAPIMG_H

#include "util.h"

#include "xml.h"

enum snap_how { SNAP_NONE, SNAP_SAVEAS, SNAP_HOT, SNAP_DEFERRED };

struct snapimg {
    int id;
    char *name, *uname, *gname, *ds_name;
    long long uid, gid, ds_id;
    long long state;   /* oned's Image::ImageState */
    long long type;    /* Image::ImageType */
    long long size_mb; /* SIZE */
    long long regtime;
    bool persistent;
    long long running_vms;
    enum snap_how how;
    int vm_id, disk_id; /* where the disk came from */
    char *when;         /* the saved state's instant, UTC, ISO 8601 */
    char *consistency;  /* "" when the save did not say */
    char *shutdown;     /* deferred: graceful or hard; "" otherwise */
};

void snapimg_release(struct snapimg *s);

/* Reads the IMAGE element at `base` ("/IMAGE", "/IMAGE_POOL/IMAGE[3]").
 * 1: a snapshot, *s filled (release it); 0: an image no save made (*s
 * left empty); -1: malformed, the reason recorded. */
int snapimg_read(const struct xml *x, const char *base, struct snapimg *s);

const char *snapimg_how_str(enum snap_how how);
/* "hot", "saveas", "deferred"; -1 for anything else. */
int snapimg_how_parse(const char *s, enum snap_how *out);
/* READY, USED, LOCKED... as oneimage prints them; "?" when unknown. */
const char *snapimg_state_str(long long state);
/* "2026-12-07T18:40:02Z" (malloc'd). */
char *snapimg_utc(long long epoch);

struct snap_filter {
    int vm_id;         /* -1: any */
    const char *name;  /* substring of the image's name; NULL: any */
    enum snap_how how; /* SNAP_NONE: any */
};

#define SNAP_FILTER_INIT                            \
    {                                               \
        .vm_id = -1, .name = NULL, .how = SNAP_NONE \
    }

bool snapimg_matches(const struct snapimg *s, const struct snap_filter *f);

/* Page `page` (1-based) of `per` entries among `total`: *first and *n.
 * -1 when that page does not exist (page 1 of nothing exists, empty). */
int snap_page(size_t total, size_t page, size_t per, size_t *first, size_t *n);
/* How many pages `total` entries make, at least 1. */
size_t snap_pages(size_t total, size_t per);

#endif
