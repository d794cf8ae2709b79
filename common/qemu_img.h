/*
 * qemu_img.h - every qemu-img command line qcow2c runs, built in one place.
 *
 * The builders only fill c->args (and a time limit); the caller runs the
 * command locally (cmd_run) or on a host (rsh_run), so the same command
 * reads the same everywhere. Formats are always given with -f/-F: probing
 * a raw image is both slow to warn about and a security risk (a raw guest
 * disk could write a qcow2 header pointing at a host file).
 */
#ifndef QCOW2C_QEMU_IMG_H
#define QCOW2C_QEMU_IMG_H

#include "run.h"

enum qi_flags {
    QI_PREALLOC = 1 << 0,    /* SPARSE=NO: allocate everything (-S 0 / falloc) */
    QI_FORCE_SHARE = 1 << 1, /* -U: read an image a running VM holds (frozen layers only) */
};

/* qemu-img create -f FMT [-o QCOW2_OPTIONS] PATH SIZE_MB M */
void qi_create(struct cmd *c, const char *fmt, const char *path, uint64_t size_mb,
               unsigned flags);
/* qemu-img create -f qcow2 -F BACKING_FMT -b BACKING PATH: an empty overlay. */
void qi_create_overlay(struct cmd *c, const char *path, const char *backing,
                       const char *backing_fmt);
/* qemu-img convert -f SRC_FMT -O OUT_FMT SRC DST (flattens a chain). */
void qi_convert(struct cmd *c, const char *src, const char *src_fmt, const char *dst,
                const char *out_fmt, unsigned flags);
/* qemu-img check -f FMT PATH. Status: 0 clean, 3 leaked clusters only,
 * 2 corrupt, 1 could not check, 63 format without checks (raw). */
void qi_check(struct cmd *c, const char *path, const char *fmt, unsigned flags);
/* Whether a check status means the image is usable. */
bool qi_check_ok(int status);
/* qemu-img compare -f FMT_A -F FMT_B A B. Status 0 equal, 1 different. */
void qi_compare(struct cmd *c, const char *a, const char *fmt_a, const char *b,
                const char *fmt_b, unsigned flags);
/* qemu-img rebase [-u] -f qcow2 -F BACKING_FMT -b BACKING PATH; BACKING ""
 * makes PATH standalone (safe mode only). */
void qi_rebase(struct cmd *c, const char *path, const char *backing, const char *backing_fmt,
               bool unsafe, unsigned flags);
/* qemu-img resize -f FMT [--preallocation=falloc] PATH SIZE_MB M */
void qi_resize(struct cmd *c, const char *path, const char *fmt, uint64_t size_mb,
               unsigned flags);
/* qemu-img info PATH (human output; LC_ALL=C is set by run.h). */
void qi_info(struct cmd *c, const char *path, unsigned flags);
/* Reads "file format:" and "virtual size: ... (N bytes)" from qi_info output. */
int qi_parse_info(const char *out, char **format, uint64_t *virtual_size);

#endif
