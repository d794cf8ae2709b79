/*
 * copy.h - copying image files as fast as the file system allows.
 *
 * In order of preference: a reflink (FICLONE: O(1) on XFS/btrfs, no extra
 * space); copy_file_range(2) over the source's data extents only
 * (SEEK_DATA/SEEK_HOLE), so holes stay holes and the kernel moves the bytes
 * (server-side on NFS 4.2); read/write with zero detection as the last
 * resort. Allocated bytes, not the virtual size, decide the cost.
 */
#ifndef QCOW2C_COPY_H
#define QCOW2C_COPY_H

#include "util.h"

struct copy_result {
    const char *method;   /* "reflink", "copy_file_range", "read/write" */
    uint64_t data_bytes;  /* bytes actually copied (0 for a reflink) */
    uint64_t size;        /* length of the copy */
};

/* Copies src_fd (from offset 0) into dst_fd, which must be empty. Without
 * `sparse` the destination is fully allocated (SPARSE=NO datastores). Does
 * not fsync. Names are for messages. */
int copy_fd(int src_fd, const char *src, int dst_fd, const char *dst, bool sparse,
            struct copy_result *res);

/* Copies file `src` to a new file `dst` (created 0644 & ~umask, must not
 * exist), then fsyncs it. On failure `dst` is removed. */
int copy_file(const char *src, const char *dst, bool sparse, struct copy_result *res);

#endif
