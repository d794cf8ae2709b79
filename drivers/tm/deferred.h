/*
 * deferred.h - the copy of a deferred disk save (issue 5), made by the TM
 * epilog before a disk goes: delete (non-persistent disks, and every disk
 * for recover --delete) and mvds (persistent disks) call it first.
 */
#ifndef QCOW2C_TM_DEFERRED_H
#define QCOW2C_TM_DEFERRED_H

#include "tmctx.h"

/* When VM t->vmid holds a pending request for disk vp->disk_id (dsave.h),
 * saves the disk into a new image and registers it; 0 also when there is
 * nothing to do. -1 (reason recorded) when the save cannot be made or the
 * VM cannot be asked: the caller must then leave the disk alone. */
int deferred_save(struct tm *t, const struct vm_path *vp);

#endif
