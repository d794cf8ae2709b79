/*
 * actions.c - the DS action table: the only list of qcow2c's datastore
 * actions. oned runs remotes/datastore/qcow2c/<name> ID with the base64
 * DS_DRIVER_ACTION_DATA message on stdin (protocol §5.1); install.sh links
 * every name below to qcow2c-ds.
 */
#include "ds.h"

#include "ds_actions.h"

#define DS_ACTION(n, fn, idname, summary)                                               \
    { n, fn, 1, 1, 1, ACT_STDIN_DS, idname " < base64 DS_DRIVER_ACTION_DATA", summary }

const struct action ds_actions[] = {
    DS_ACTION("cp", ds_cp, "IMAGE_ID", "register an image from a local file or http(s) URL"),
    DS_ACTION("mkfs", ds_mkfs, "IMAGE_ID", "create an empty datablock, or name a save-as target"),
    DS_ACTION("rm", ds_rm, "IMAGE_ID", "delete an image and its snapshots"),
    DS_ACTION("stat", ds_stat, "REQUEST_ID", "print the size in MB of the image at PATH"),
    DS_ACTION("clone", ds_clone, "IMAGE_ID", "copy an image into a new image"),
    DS_ACTION("monitor", ds_monitor, "DATASTORE_ID", "print USED_MB, FREE_MB, TOTAL_MB"),
    DS_ACTION("snap_delete", ds_snap_delete, "IMAGE_ID", "delete a snapshot of an image"),
    DS_ACTION("snap_revert", ds_snap_revert, "IMAGE_ID", "revert an image to a snapshot"),
    DS_ACTION("snap_flatten", ds_snap_flatten, "IMAGE_ID",
              "make a snapshot the image and drop the others"),
    DS_ACTION("export", ds_export, "APP_ID", "tell the marketplace where the image is"),
};
const size_t ds_action_count = ARRAY_SIZE(ds_actions);
