/*
 * layout.h - the qcow2 "snap dir" layout, shared with OpenNebula's qcow2 TM
 * (protocol §2.2, trap 9), so that VMs move freely between the two drivers:
 *
 *   disk.N            -> disk.N.snap/<active>       relative symlink
 *   disk.N.snap/      the chain: file K holds snapshot K, the highest number
 *                     is the active (written) file
 *   disk.N.snap/disk.N.snap -> .                    so that relative backing
 *                                                   names "disk.N.snap/K" resolve
 *   disk.N.snap/K.current                           snapshot K lives in another
 *                                                   file (after a live blockcommit)
 *
 * For a persistent image (shared mode) the same chain lives beside the image:
 * SOURCE.snap/0 -> SOURCE, SOURCE.snap/<name>.snap -> ., and the VM's disk.N
 * links to SOURCE.snap/<active> by absolute path.
 *
 * Every file is built beside its final name and renamed, so a re-run after a
 * failure finds either nothing or a complete file.
 */
#ifndef QCOW2C_LAYOUT_H
#define QCOW2C_LAYOUT_H

#include "host.h"

struct layout {
    char *disk;     /* absolute path of disk.N (or of SOURCE) */
    char *name;     /* its last component */
    char *dir;      /* its directory */
    char *snap_dir; /* <disk>.snap */
    char *self;     /* <disk>.snap/<name>.snap */
};

void layout_init(struct layout *l, const char *disk);
void layout_release(struct layout *l);
/* <disk>.snap/<id> */
char *layout_snap(const struct layout *l, int id);
/* "<name>.snap/<id>": the relative name links and backing files use */
char *layout_snap_rel(const struct layout *l, int id);

/* The numeric ids present in the snap dir, ascending. */
int layout_ids(struct host *h, const struct layout *l, int **ids, size_t *n);
/* Where disk.N points, as an absolute path, and that file's id (-1 when it
 * is not a numeric file of the snap dir). */
int layout_active(struct host *h, const struct layout *l, char **path, int *id);

/* disk.N -> disk.N.snap/0 with 0 an empty overlay on `backing` (absolute).
 * Leaves a complete layout alone. */
int layout_make_overlay(struct host *h, const struct layout *l, const char *backing,
                        const char *backing_fmt);
/* The same with 0 a standalone copy of `src` (flattened by qemu-img convert;
 * SPARSE=NO preallocates). */
int layout_make_copy(struct host *h, const struct layout *l, const char *src,
                     const char *src_fmt, bool sparse);
/* The self link disk.N.snap/<name>.snap -> . (idempotent). */
int layout_self_link(struct host *h, const struct layout *l);

#endif
