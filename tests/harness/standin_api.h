/*
 * standin_api.h - the oned methods the stand-in serves. Each reads its
 * parameters from the request and leaves oned's answer (or a fault) in it.
 * Checks run in the order oned runs them, so that a call failing two of
 * them gets oned's error, not another one.
 */
#ifndef QCOW2C_STANDIN_API_H
#define QCOW2C_STANDIN_API_H

#include "standin_rpc.h"
#include "standin_tmpl.h"

/* standin_vm.c */
void m_vm_info(struct req *r);
void m_vm_update(struct req *r);
void m_vm_disksaveas(struct req *r);
void m_vm_allocate(struct req *r);
void m_vmpool_info(struct req *r);
/* Restores a VM after its save-as ended without a copy (the target image
 * was deleted): LifeCycle clear_saveas_state + clear_saveas_disk. */
int vm_clear_saveas(struct req *r, int vm_id);

/* standin_image.c */
void m_image_info(struct req *r);
void m_image_allocate(struct req *r);
void m_image_update(struct req *r);
void m_image_chown(struct req *r);
void m_image_delete(struct req *r);
void m_imagepool_info(struct req *r);
void m_datastore_info(struct req *r);
void m_user_info(struct req *r);

/* A new IMAGE as Image::insert leaves it (the template already stripped of
 * the attributes that became elements). */
struct new_image {
    const char *name;
    int type; /* Image::ImageType: 0 OS, 1 CDROM, 2 DATABLOCK... */
    bool persistent;
    const char *source, *path, *format, *fs;
    long long size_mb;
    int state; /* 1 READY, 4 LOCKED */
    int ds_id;
    const char *ds_name;
    int disk_type;
    const struct tmpl *tmpl;
};

/* Stores the image owned by the caller and registers it in its datastore;
 * answers on failure. Returns the id, or -1. */
int image_create(struct req *r, const struct new_image *ni);
/* ImagePool::allocate's checks of NAME (validity, uniqueness per owner):
 * NULL or the message (into buf). */
const char *image_name_problem(struct req *r, const char *name, int uid, char *buf, size_t len);
/* Image::str_to_type; -1 when unknown. */
int image_type(const char *s);
const char *image_type_str(int type);

/* A new VM `vm_id` takes the images of its disks (each USE-checked, its
 * state moved on, the VM among its users), or none of them: -1 with oned's
 * refusal in buf, or answered already (r->answer: not authorized). */
int images_acquire(struct req *r, const int *image_ids, size_t n, int vm_id, char *buf,
                   size_t len);

/* Answers the stored document of object `id` after checking USE. */
void object_info(struct req *r, enum kind k, int id);

#endif
