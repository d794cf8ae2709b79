/*
 * host.h - doing things on a machine of the cloud from a TM action.
 *
 * A host is reached over one ssh session per action (common/ssh.h), opened
 * on first use; when the name is this front-end (its host name, "localhost",
 * or LOCAL_HOSTS in qcow2c.conf) the same commands run locally instead. The
 * helpers below are the vocabulary the actions use; each is one command on
 * the host (queries on the local front-end use system calls directly).
 * Every remote argument is quoted by sq_quote(); the few fixed scripts here
 * take their data as positional parameters only.
 */
#ifndef QCOW2C_TM_HOST_H
#define QCOW2C_TM_HOST_H

#include "image.h"
#include "run.h"

struct host;

/* NULL (reason recorded) for an invalid name. No connection yet. */
struct host *host_new(const char *name);
void host_free(struct host *h);
const char *host_name(const struct host *h);
bool host_is_local(const struct host *h);
/* True when `name` is this front-end. */
bool host_name_is_local(const char *name);

/* Runs c->args on the host: as cmd_run / cmd_run_status. */
int host_run(struct host *h, struct cmd *c);
int host_run_status(struct host *h, struct cmd *c);
/* Runs argv (NULL-terminated list) with the default time limit. */
int host_runl(struct host *h, const char *arg0, ...) __attribute__((sentinel));

/* What is at a path, without following a final symlink. */
struct rstat {
    char kind;    /* 'N' nothing, 'F' file, 'D' directory, 'L' symlink, 'O' other */
    char *target; /* symlink target as stored */
};
int host_stat(struct host *h, const char *path, struct rstat *st);
void rstat_release(struct rstat *st);
/* Names in a directory (not "." and ".."); a missing directory is empty. */
int host_list(struct host *h, const char *dir, struct strvec *names);
/* The image header of a file (follows symlinks), probed natively. */
int host_probe_image(struct host *h, const char *path, struct image_info *ii);
/* The content of a small file (e.g. disk.N.snap/K.current). */
int host_read_file(struct host *h, const char *path, struct sbuf *out);

int host_mkdir_p(struct host *h, const char *dir);
/* rm -rf; a missing path is success. */
int host_rm_rf(struct host *h, const char *path);
/* Makes `link` a symlink to `target`, replacing what is there atomically
 * (new link beside it, then rename). */
int host_symlink(struct host *h, const char *target, const char *link);
/* rename(2): mv -fT FROM TO. */
int host_rename(struct host *h, const char *from, const char *to);
/* fsync of files or directories (coreutils sync FILE...). */
int host_sync(struct host *h, const char *path);
/* fsync TMP, rename TMP to FINAL, fsync the directory. */
int host_publish(struct host *h, const char *tmp, const char *final);
/* Writes `data` into a new file (through a temporary beside it). */
int host_write_file(struct host *h, const char *path, const char *data);

#endif
