/*
 * lock.h - front-end locks between concurrent actions.
 *
 * oned runs up to 15 actions at once with no per-VM ordering, and after a
 * cancel it starts the cleanup while the cancelled action still runs (traps
 * 25, 28). Every TM action therefore holds the lock of its VM, and every
 * action that writes an image file holds the lock of that file. Locks are
 * flock(2) on files in LOCK_DIR on the front-end, where every action starts;
 * the kernel drops them when the holder dies, so a killed action never leaves
 * a stale lock. Waiting is bounded by LOCK_TIMEOUT.
 */
#ifndef QCOW2C_LOCK_H
#define QCOW2C_LOCK_H

#include "util.h"

struct lock {
    int fd;
};
#define LOCK_INIT { .fd = -1 }

/* Takes the lock named `name` (e.g. "vm-42"); waits at most `timeout_s`.
 * `what` describes the holder in the timeout message ("VM 42"). */
int lock_take(struct lock *l, const char *name, const char *what, unsigned timeout_s);
/* Lock for an image file, named after its normalised path. */
int lock_take_path(struct lock *l, const char *path, unsigned timeout_s);
void lock_release(struct lock *l);

#endif
