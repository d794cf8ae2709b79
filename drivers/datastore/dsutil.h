/*
 * dsutil.h - what every DS action needs from the driver message, and the
 * steps they share: naming new images, refusing paths outside the datastore
 * or in restricted directories, and publishing a verified file.
 */
#ifndef QCOW2C_DSUTIL_H
#define QCOW2C_DSUTIL_H

#include "multicall.h"
#include "xml.h"

struct ds {
    int id;
    char *base_path; /* DATASTORE/BASE_PATH verbatim: SOURCEs are printed with it */
    char *base_norm; /* the same, normalised, for file operations */
    int type;        /* 0 image, 1 system, 2 file, 3 backup */
    char *driver;    /* TEMPLATE/DRIVER: the format new images get ("" = keep) */
    bool sparse;     /* TEMPLATE/SPARSE != NO */
};

/* Reads DATASTORE from the message. Refuses a datastore that needs a
 * BRIDGE_LIST (qcow2c works on the front-end's mount of the datastore). */
int ds_load(const struct xml *msg, struct ds *ds);
void ds_release(struct ds *ds);

/* DATASTORE/TEMPLATE/<name> or IMAGE/... helpers (NULL when missing). */
char *ds_tmpl(const struct xml *msg, const char *name);
char *img_attr(const struct xml *msg, const char *name);

/* BASE_PATH/<md5("<epoch>:<image id>\n")>, the name OpenNebula's fs driver
 * gives new images, so datastores can move between drivers. Printed form. */
char *ds_new_source(const struct ds *ds, int image_id);

/* Normalised SOURCE that must be a direct child of the datastore directory;
 * refuses anything else (one reason). */
int ds_check_source(const struct ds *ds, const char *source, char **norm);

/* Refuses a local PATH under RESTRICTED_DIRS (plus /var/lib/one/, /etc/one/
 * and $HOME/, or their $ONE_LOCATION equivalents) unless it is under
 * SAFE_DIRS; symlinks are resolved first. */
int ds_check_restricted(const struct xml *msg, const char *path);

/* Format of a local file as qemu-img names it: the native probe, confirmed
 * by qemu-img info when the probe sees no known header. */
int ds_detect_format(const char *path, char **format, uint64_t *virtual_size);

/* Checks `tmp` (qemu-img check, when VERIFY_COPIES) and publishes it as
 * `final` (fsync, rename, fsync dir). Removes `tmp` on failure. */
int ds_verify_and_publish(const char *tmp, const char *final, const char *format);

/* The file holding an image's current content in the qcow2c layout: the
 * highest-numbered file of SOURCE.snap/ when there is one, else SOURCE. */
char *ds_image_head(const char *source_norm);

#endif
