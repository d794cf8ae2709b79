/*
 * actions.c - the TM action table: the only list of qcow2c's transfer
 * actions. oned's transfer driver runs remotes/tm/qcow2c/<name> with the
 * words of a transfer-file line (protocol §1.3-1.4, §2.1); for mixed mode
 * (system datastore of TM ssh) it asks for <name>.ssh first, so every action
 * that behaves differently there has its .ssh entry. install.sh links each
 * name to qcow2c-tm.
 */
#include "tm.h"

#include "tm_actions.h"

#define VM ACT_ID_IS_VM

const struct action tm_actions[] = {
    { "clone", tm_clone, 4, 4, 3, VM, "fe:SOURCE HOST:VM_DIR/disk.N VM_ID DS_ID",
      "non-persistent disk: qcow2 overlay on the image (shared system datastore)" },
    { "clone.ssh", tm_clone, 4, 4, 3, VM, "fe:SOURCE HOST:VM_DIR/disk.N VM_ID DS_ID",
      "non-persistent disk: standalone copy into a local system datastore" },
    { "ln", tm_ln, 4, 4, 3, VM, "fe:SOURCE HOST:VM_DIR/disk.N VM_ID DS_ID",
      "persistent disk: link into the image's snapshot chain" },
    { "ln.ssh", tm_ln, 4, 4, 3, VM, "fe:SOURCE HOST:VM_DIR/disk.N VM_ID DS_ID",
      "persistent disk: copy of the image and its snapshots into a local system datastore" },
    { "mkswap", tm_mkswap, 4, 4, 3, VM, "SIZE_MB HOST:VM_DIR/disk.N VM_ID DS_ID",
      "volatile swap disk" },
    { "mkimage", tm_mkimage, 5, 5, 4, VM, "SIZE_MB FORMAT HOST:VM_DIR/disk.N VM_ID DS_ID",
      "volatile disk, optionally with a file system" },
    { "context", tm_context, 3, -1, -2, VM, "[FILE...] HOST:VM_DIR/disk.N VM_ID DS_ID",
      "context ISO built on the front-end and copied to the host" },
    { "mv", tm_mv, 4, 4, 3, VM, "SRC_HOST:PATH DST_HOST:PATH VM_ID DS_ID",
      "move a VM directory between system datastores (disks: nothing to do)" },
    { "mv.ssh", tm_mv, 4, 4, 3, VM, "SRC_HOST:PATH DST_HOST:PATH VM_ID DS_ID",
      "per-disk move in mixed mode (the system TM moves the directory)" },
    { "mvds", tm_mvds, 4, 4, 3, VM, "HOST:VM_DIR/disk.N SOURCE VM_ID DS_ID",
      "persistent disk back to its image (shared: already there)" },
    { "mvds.ssh", tm_mvds, 4, 4, 3, VM, "HOST:VM_DIR/disk.N SOURCE VM_ID DS_ID",
      "persistent disk and its snapshots moved back into the image datastore" },
    { "cpds", tm_cpds, 5, 5, 4, VM, "HOST:VM_DIR/disk.N NEW_SOURCE SNAP_ID VM_ID DS_ID",
      "disk save-as: a verified standalone copy of the disk or of a snapshot" },
    { "cpds.ssh", tm_cpds, 5, 5, 4, VM, "HOST:VM_DIR/disk.N NEW_SOURCE SNAP_ID VM_ID DS_ID",
      "disk save-as from a local system datastore" },
    { "delete", tm_delete, 3, 3, 2, VM, "HOST:PATH VM_ID DS_ID",
      "remove a disk's file or link, or a VM directory" },
    { "resize", tm_resize, 4, 4, 3, VM, "HOST:VM_DIR/disk.N SIZE_MB VM_ID DS_ID",
      "grow a disk of a powered-off VM" },
    { "snap_create", tm_snap_create, 4, 4, 3, VM, "HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID",
      "disk snapshot of a powered-off VM" },
    { "snap_create.ssh", tm_snap_create, 4, 4, 3, VM, "HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID",
      "disk snapshot in a local system datastore" },
    { "snap_create_live", tm_snap_create_live, 4, 4, 3, VM,
      "HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID", "disk snapshot of a running VM" },
    { "snap_create_live.ssh", tm_snap_create_live, 4, 4, 3, VM,
      "HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID",
      "disk snapshot of a running VM in a local system datastore" },
    { "snap_delete", tm_snap_delete, 4, 4, 3, VM, "HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID",
      "delete a disk snapshot without breaking the chain" },
    { "snap_delete.ssh", tm_snap_delete, 4, 4, 3, VM, "HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID",
      "delete a disk snapshot in a local system datastore" },
    { "snap_revert", tm_snap_revert, 4, 4, 3, VM, "HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID",
      "revert a disk to a snapshot" },
    { "snap_revert.ssh", tm_snap_revert, 4, 4, 3, VM, "HOST:VM_DIR/disk.N SNAP_ID VM_ID DS_ID",
      "revert a disk to a snapshot in a local system datastore" },
    { "premigrate", tm_premigrate, 5, 6, 4, VM,
      "SRC_HOST DST_HOST VM_DIR VM_ID DS_ID [CALLER_TM] < base64 VM",
      "before a live migration" },
    { "postmigrate", tm_postmigrate, 5, 6, 4, VM,
      "SRC_HOST DST_HOST VM_DIR VM_ID DS_ID [CALLER_TM] < base64 VM",
      "after a live migration" },
    { "failmigrate", tm_failmigrate, 5, 6, 4, VM,
      "SRC_HOST DST_HOST VM_DIR VM_ID DS_ID [CALLER_TM] < base64 VM",
      "after a failed live migration" },
    { "monitor", tm_monitor, 1, 1, 1, ACT_STDIN_DS, "DS_ID < base64 DS_DRIVER_ACTION_DATA",
      "space of a shared system datastore and of its VMs' disks" },
    { "prebackup", tm_no_backup, 0, -1, 0, 0, "...", "backups are not supported" },
    { "prebackup_live", tm_no_backup, 0, -1, 0, 0, "...", "backups are not supported" },
    { "postbackup", tm_no_backup, 0, -1, 0, 0, "...", "backups are not supported" },
    { "postbackup_live", tm_no_backup, 0, -1, 0, 0, "...", "backups are not supported" },
    { "restore", tm_no_backup, 0, -1, 0, 0, "...", "backups are not supported" },
};
const size_t tm_action_count = ARRAY_SIZE(tm_actions);
