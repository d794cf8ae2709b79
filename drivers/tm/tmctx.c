/* tmctx.c - the VM an action works on; see tmctx.h. */
#include "tmctx.h"

#include "cleanup.h"
#include "config.h"
#include "hostpath.h"
#include "log.h"
#include "num.h"

int tm_start(struct tm *t, struct action_ctx *ctx)
{
    _cleanup_free_ char *name = NULL;
    _cleanup_free_ char *what = NULL;

    memset(t, 0, sizeof(*t));
    t->lock.fd = -1;
    t->ctx = ctx;
    t->vmid = ctx->id;
    t->ssh_mode = ends_with(ctx->name, ".ssh");
    name = xasprintf("vm-%d", t->vmid);
    what = xasprintf("VM %d", t->vmid);
    return lock_take(&t->lock, name, what, config_uint("LOCK_TIMEOUT"));
}

void tm_end(struct tm *t)
{
    for (int i = 0; i < TM_MAX_HOSTS; i++)
        host_free(t->hosts[i]);
    xml_free(t->vm);
    one_close(t->one);
    lock_release(&t->lock);
    memset(t, 0, sizeof(*t));
    t->lock.fd = -1;
}

const struct xml *tm_vm(struct tm *t)
{
    _cleanup_free_ char *doc = NULL;

    if (t->vm)
        return t->vm;
    if (!t->one && !(t->one = one_open_driver()))
        return NULL;
    if (one_vm_info(t->one, t->vmid, &doc) < 0)
        return NULL;
    t->vm = xml_doc_parse(doc, strlen(doc), "VM");
    if (!t->vm)
        fail_context("oned's document for VM %d", t->vmid);
    return t->vm;
}

int tm_disk_attr(struct tm *t, int disk_id, const char *attr, char **out)
{
    const struct xml *vm = tm_vm(t);

    *out = NULL;
    if (!vm)
        return -1;
    *out = xml_get(vm, "/VM/TEMPLATE/DISK[DISK_ID=%d]/%s", disk_id, attr);
    return 0;
}

int tm_lcm_state(struct tm *t, int *state)
{
    const struct xml *vm = tm_vm(t);
    long long v;

    if (!vm || xml_get_int(vm, &v, "/VM/LCM_STATE") < 0)
        return -1;
    *state = (int)v;
    return 0;
}

struct host *tm_host(struct tm *t, const char *name)
{
    int i;

    for (i = 0; i < TM_MAX_HOSTS && t->hosts[i]; i++)
        if (streq(host_name(t->hosts[i]), name))
            return t->hosts[i];
    if (i == TM_MAX_HOSTS)
        die("internal error: too many hosts in one action");
    t->hosts[i] = host_new(name);
    return t->hosts[i];
}

/* ---- paths ---- */

static bool is_disk_name(const char *name, int *id)
{
    return starts_with(name, "disk.") && parse_id(name + 5, id) == 0;
}

int vm_path_parse(const char *arg, int vmid, const char *what, struct vm_path *vp)
{
    struct hostpath hp;
    _cleanup_free_ char *vmid_s = xasprintf("%d", vmid);
    const char *base;
    char *dsname;

    memset(vp, 0, sizeof(*vp));
    if (hostpath_parse(arg, what, &hp) < 0)
        return -1;
    vp->host = hp.host;
    vp->path = hp.path;
    base = path_basename(vp->path);
    if (streq(base, vmid_s)) {
        vp->kind = VM_PATH_DIR;
        vp->vm_dir = xstrdup(vp->path);
    } else {
        vp->kind = is_disk_name(base, &vp->disk_id) ? VM_PATH_DISK : VM_PATH_FILE;
        vp->vm_dir = path_dirname(vp->path);
        if (!streq(path_basename(vp->vm_dir), vmid_s)) {
            fail("the %s '%s' is not inside the directory of VM %d", what, arg, vmid);
            goto bad;
        }
    }
    vp->ds_dir = path_dirname(vp->vm_dir);
    vp->ds_root = path_dirname(vp->ds_dir);
    dsname = (char *)path_basename(vp->ds_dir);
    if (parse_id(dsname, &vp->sys_ds_id) < 0 || streq(vp->ds_root, "/")) {
        fail("the %s '%s' is not of the form <datastores>/<ds id>/%d/...", what, arg, vmid);
        goto bad;
    }
    return 0;
bad:
    vm_path_release(vp);
    return -1;
}

void vm_path_release(struct vm_path *vp)
{
    free(vp->host);
    free(vp->path);
    free(vp->vm_dir);
    free(vp->ds_dir);
    free(vp->ds_root);
    memset(vp, 0, sizeof(*vp));
}

char *image_path_on_host(const struct vm_path *vp, const char *source)
{
    _cleanup_free_ char *norm = path_normalize(source);
    _cleanup_free_ char *dir = path_dirname(norm);
    const char *img = path_basename(norm);
    const char *ds = path_basename(dir);

    return xasprintf("%s/%s/%s", vp->ds_root, ds, img);
}
