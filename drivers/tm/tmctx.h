/*
 * tmctx.h - what every TM action starts from.
 *
 * struct tm holds the action's VM: its id, whether oned called the `.ssh`
 * variant (the system datastore is not shared, protocol §1.3-1.4), the VM
 * document from oned (one.vm.info, fetched once, on first use), the VM's
 * front-end lock and one host handle per machine the action touches.
 *
 * Every TM action holds the lock of its VM for its whole run: oned may start
 * a cleanup DELETE while a cancelled MVDS or CPDS of the same VM is still
 * copying (traps 21, 25), and the VMM driver runs TM actions beside
 * transfers (trap 28).
 */
#ifndef QCOW2C_TMCTX_H
#define QCOW2C_TMCTX_H

#include "host.h"
#include "lock.h"
#include "multicall.h"
#include "one.h"
#include "xml.h"

#define TM_MAX_HOSTS 4

struct tm {
    struct action_ctx *ctx;
    int vmid;
    bool ssh_mode;
    struct one_client *one;
    struct xml *vm;
    struct lock lock;
    struct host *hosts[TM_MAX_HOSTS];
};

/* Takes the VM's lock (the VM id is ctx->id). */
int tm_start(struct tm *t, struct action_ctx *ctx);
void tm_end(struct tm *t);

/* The VM document (one.vm.info), NULL with the reason recorded. */
const struct xml *tm_vm(struct tm *t);
/* DISK[DISK_ID=n]/ATTR into *out (NULL when the attribute is absent).
 * -1 only when the VM cannot be read. */
int tm_disk_attr(struct tm *t, int disk_id, const char *attr, char **out);
/* /VM/LCM_STATE. */
int tm_lcm_state(struct tm *t, int *state);
/* The machine `name`, opened once per action (cached). */
struct host *tm_host(struct tm *t, const char *name);

/* LCM states the TM cares about (include/VirtualMachine.h). */
enum {
    LCM_RUNNING = 3,
    LCM_HOTPLUG_SAVEAS = 26,
    LCM_HOTPLUG_SAVEAS_POWEROFF = 27,
    LCM_HOTPLUG_SAVEAS_SUSPENDED = 28,
    LCM_DISK_SNAPSHOT = 59,
    LCM_DISK_RESIZE = 62,
    LCM_DISK_RESIZE_POWEROFF = 63,
    LCM_DISK_RESIZE_UNDEPLOYED = 64,
};

/*
 * A path argument inside a VM directory, as oned writes it:
 *   [host:]<DATASTORE_LOCATION>/<system ds id>/<vm id>[/disk.<n> | /<file>]
 * The VM id in the path must be the action's VM: a hostile or mistaken path
 * elsewhere is refused, never acted on.
 */
enum vm_path_kind { VM_PATH_DIR, VM_PATH_DISK, VM_PATH_FILE };

struct vm_path {
    char *host;     /* NULL for a bare path */
    char *path;     /* normalised */
    char *vm_dir;
    char *ds_dir;   /* <DATASTORE_LOCATION>/<system ds id> */
    char *ds_root;  /* <DATASTORE_LOCATION> as the host sees it */
    int sys_ds_id;
    enum vm_path_kind kind;
    int disk_id;    /* for VM_PATH_DISK */
};

int vm_path_parse(const char *arg, int vmid, const char *what, struct vm_path *vp);
void vm_path_release(struct vm_path *vp);

/* An image SOURCE (e.g. /var/lib/one//datastores/1/<hash>) as the host of
 * `vp` sees it: its last two components under vp->ds_root, as OpenNebula's
 * qcow2 driver rewrites it (datastores may be mounted elsewhere on hosts). */
char *image_path_on_host(const struct vm_path *vp, const char *source);

#endif
