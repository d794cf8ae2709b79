/*
 * onesnap.h - what the onesnap commands share: the parsed command line and
 * the documents they read from oned.
 *
 *   request.c  create (--deferred, --hot), cancel, list --pending
 *   images.c   list, show, delete of the images a save made (snapimg.h)
 *   boot.c     boot: a new VM from such an image
 */
#ifndef QCOW2C_ONESNAP_H
#define QCOW2C_ONESNAP_H

#include "util.h"

#include "one.h"
#include "snapimg.h"
#include "xml.h"

#define ONESNAP_PER_PAGE 20

struct args {
    const char *cmd;
    int vmid, disk_id; /* create, cancel */
    int image_id;      /* show, delete, boot */
    const char *name;  /* create: the image's name; boot: the VM's */
    bool deferred, hot, persistent, pending, mine, hold;
    char *type; /* upper case, or NULL */
    int snap_id;
    struct snap_filter filter; /* list */
    size_t page, per_page;
    const char *cpu; /* boot overrides; NULL/0: the origin VM's */
    int vcpu;
    long long memory_mb;
};

/* Each returns 0, or -1 with the reason recorded. */
int cmd_create_deferred(struct one_client *c, const struct args *a);
int cmd_create_hot(struct one_client *c, const struct args *a);
int cmd_cancel(struct one_client *c, const struct args *a);
int cmd_list_pending(struct one_client *c, const struct args *a);
int cmd_list(struct one_client *c, const struct args *a);
int cmd_show(struct one_client *c, const struct args *a);
int cmd_delete(struct one_client *c, const struct args *a);
int cmd_boot(struct one_client *c, const struct args *a);

/* oned's document of VM vmid, parsed. */
struct xml *vm_doc(struct one_client *c, int vmid);
/* Image id as a snapshot: its document (may be NULL) and *s; a refusal
 * when no save made it. */
int snap_load(struct one_client *c, int id, struct xml **doc, struct snapimg *s);

#endif
