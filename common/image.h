/*
 * image.h - what an image file is, read from its header without running
 * qemu-img.
 *
 * The monitor of a datastore with thousands of disks, and every action that
 * must know a disk's format or backing file, would otherwise fork qemu-img
 * once per file. The qcow2 header holds the virtual size, the backing file
 * and (in an extension) its format; the other formats qemu knows are only
 * recognised by their magic, and their virtual size is left to qemu-img.
 * Anything unrecognised is raw, as qemu-img's probe says.
 */
#ifndef QCOW2C_IMAGE_H
#define QCOW2C_IMAGE_H

#include "util.h"

struct image_info {
    const char *format;      /* qemu's name: "raw", "qcow2", "vmdk", ... */
    bool size_known;         /* virtual_size is valid */
    uint64_t virtual_size;   /* bytes */
    char *backing_file;      /* qcow2: as written in the header, or NULL */
    char *backing_format;    /* qcow2 extension, or NULL */
    uint32_t qcow2_version;
    uint32_t cluster_bits;
    uint32_t nb_snapshots;   /* internal snapshots */
    bool encrypted;
    bool dirty;              /* lazy refcounts left dirty: needs a repair */
    bool corrupt;            /* QEMU marked it corrupt */
    bool external_data;      /* qcow2 with an external data file */
};

/* Bytes of header enough for image_probe_buf to decide (qcow2 names its
 * backing file within the first cluster in practice; 64 KiB covers it). */
#define IMAGE_PROBE_BYTES (64u << 10)

/* Probes a header. `file_size` is the size of the whole file/stream (for
 * raw images), 0 when unknown. Returns 0; -1 only for a header that claims
 * to be qcow2 but is inconsistent (reason recorded). */
int image_probe_buf(const void *buf, size_t len, uint64_t file_size, struct image_info *ii);
/* Probes a file, following symlinks. */
int image_probe_path(const char *path, struct image_info *ii);
void image_info_release(struct image_info *ii);

/* True when the image is a single self-contained qcow2 or raw file that a
 * byte copy reproduces exactly (no backing file, no external data file). */
bool image_is_standalone(const struct image_info *ii);

#endif
