/*
 * fsutil.h - file-system steps that keep data safe.
 *
 * The publication rule of qcow2c: a file is written under a temporary name
 * beside its final one (same directory, so rename(2) is atomic), flushed with
 * fsync, renamed, and the directory is flushed too. A reader therefore sees
 * either no file or a complete one, after a crash as well.
 */
#ifndef QCOW2C_FSUTIL_H
#define QCOW2C_FSUTIL_H

#include "util.h"

/* The temporary name used beside `final`: "<final>.part". Fixed (not random)
 * so that a re-run after a crash finds and replaces its own leftover. */
char *part_name(const char *final);

/* mkdir -p; 0 or -1 with the reason recorded. */
int mkdir_p(const char *path, mode_t mode);
/* rm -rf without following symlinks; a missing path is success. */
int rm_rf(const char *path);
/* unlink(2) that treats ENOENT as success. */
int unlink_if_exists(const char *path);

int fsync_fd(int fd, const char *name);
int fsync_path(const char *path);
int fsync_dir_of(const char *path);
/* fsync(tmp), rename(tmp, final), fsync(dirname(final)). */
int publish(const char *tmp, const char *final);

/* Bytes free for unprivileged writers on the file system holding `path`. */
int fs_free_bytes(const char *path, uint64_t *free_bytes);

/* Replaces (or creates) symlink `path` -> `target` atomically. */
int symlink_replace(const char *target, const char *path);

#endif
