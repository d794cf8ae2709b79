/*
 * transfer.h - what the actions that move or copy a VM's files share: mv,
 * mvds, cpds and the migrate hooks.
 *
 * Remote work is done by small fixed scripts (sh -c SCRIPT sh ARGS...),
 * their data as positional parameters only, one command each over the
 * action's one ssh session (or locally on the front-end). Their answers are
 * NUL-separated records, so no file name can be mistaken for a separator.
 */
#ifndef QCOW2C_TM_TRANSFER_H
#define QCOW2C_TM_TRANSFER_H

#include "tmctx.h"

/* Runs `sh -c SCRIPT sh ARG...` (NULL-terminated) on the host; `what` names
 * it in a failure reason ("moving disk.0 into ..."). The script's stdout
 * goes to `out` when not NULL. timeout_s 0: TIMEOUT. */
int xfer_sh(struct host *h, const char *what, unsigned timeout_s, struct sbuf *out,
            const char *script, ...) __attribute__((sentinel));
/* The same with the arguments in a vector. */
int xfer_shv(struct host *h, const char *what, unsigned timeout_s, struct sbuf *out,
             const char *script, const struct strvec *args);

/* Splits NUL-terminated records into `out` (a trailing unterminated record
 * is dropped: an answer cut short). */
void xfer_split0(const struct sbuf *in, struct strvec *out);

/* fsync `part`, rename it to `final`, fsync the directory: one command. */
int xfer_publish(struct host *h, const char *part, const char *final);
/* rm -f of a temporary file after a failure; never changes the recorded
 * reason (the first failure is what the user must see). */
void xfer_drop(struct host *h, const char *path);

/* The shell function `ent PATH` printing "K\0INFO\0" for one path: K is
 * 'F' (regular file; INFO "size:mtime(ns):dev:inode"), 'L' (symlink; INFO
 * its target), 'D', 'O' (other) or 'N' (nothing; INFO empty). */
#define XFER_ENT_FN                                                                 \
    "ent() { if [ -L \"$1\" ]; then printf 'L\\0%s\\0' \"$(readlink -- \"$1\")\"; " \
    "elif [ -f \"$1\" ]; then printf 'F\\0%s\\0' "                                  \
    "\"$(stat -c '%s:%.9Y:%d:%i' -- \"$1\")\"; "                                    \
    "elif [ -d \"$1\" ]; then printf 'D\\0\\0'; "                                   \
    "elif [ -e \"$1\" ]; then printf 'O\\0\\0'; else printf 'N\\0\\0'; fi; }; "

/* "size:mtime" of a file entry's info: the mark of an identical copy (a
 * copy keeps its source's time, touch -r). */
bool xfer_same_data(const char *info_a, const char *info_b);
/* Same device and inode: two names of one file. */
bool xfer_same_file(const char *info_a, const char *info_b);

#endif
