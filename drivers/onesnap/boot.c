/*
 * boot.c - onesnap boot: a new VM whose disk is a snapshot.
 *
 * The new VM is shaped like the VM the snapshot was saved from: its size
 * (CPU, VCPU, MEMORY), machine (OS, FEATURES: the guest agent among them),
 * console (GRAPHICS) and networks (NIC: the network only, oned gives new
 * addresses), and contextualisation of the network and ssh key. It does not
 * take that VM's other disks: booting the snapshot is the point, and a
 * persistent disk can serve one VM only. oned keeps a terminated VM's
 * document, so this works after a deferred save too; when the VM cannot be
 * read (purged, or not the caller's), --memory and --cpu say the size.
 * Anything given on the command line wins.
 *
 * one.vm.allocate, with the caller's credentials: oned checks that they may
 * use the image and charges their quota.
 */
#include "onesnap.h"

#include "cleanup.h"
#include "log.h"

/* NULL-terminated lists of what each vector keeps. */
static const char *const os_keys[] = { "ARCH", "MACHINE", "FIRMWARE", "FIRMWARE_SECURE", NULL };
static const char *const features_keys[] = {
    "ACPI", "PAE", "APIC", "LOCALTIME", "HYPERV", "GUEST_AGENT", "IOTHREADS", "VIRTIO_SCSI_QUEUES",
    NULL
};
static const char *const graphics_keys[] = { "TYPE", "LISTEN", "KEYMAP", NULL };
static const char *const nic_keys[] = { "NETWORK_ID", "MODEL", NULL };
static const char *const context_keys[] = { "NETWORK", "SSH_PUBLIC_KEY", NULL };

/* Each origin/VM/TEMPLATE/<name> vector with the listed keys it has. */
static void copy_vectors(const struct xml *vm, struct xml_tmpl *t, const char *name,
                         const char *const *keys)
{
    int n = xml_count(vm, "/VM/TEMPLATE/%s", name);

    for (int i = 1; i <= n; i++) {
        bool open = false;

        for (const char *const *k = keys; *k; k++) {
            _cleanup_free_ char *v = xml_get(vm, "/VM/TEMPLATE/%s[%d]/%s", name, i, *k);

            if (str_empty(v))
                continue;
            if (!open)
                xml_tmpl_open(t, name);
            open = true;
            xml_tmpl_add(t, *k, v);
        }
        if (open)
            xml_tmpl_close(t, name);
    }
}

/* A single attribute: the command line's, else the origin's, else none. */
static void size_attr(struct xml_tmpl *t, const struct xml *vm, const char *name, const char *given)
{
    _cleanup_free_ char *v = NULL;

    if (given) {
        xml_tmpl_add(t, name, given);
        return;
    }
    v = vm ? xml_get(vm, "/VM/TEMPLATE/%s", name) : NULL;
    if (!str_empty(v))
        xml_tmpl_add(t, name, v);
}

static char *boot_template(const struct args *a, const struct snapimg *s, const struct xml *vm)
{
    _cleanup_free_ char *memory = a->memory_mb ? xasprintf("%lld", a->memory_mb) : NULL;
    _cleanup_free_ char *vcpu = a->vcpu ? xasprintf("%d", a->vcpu) : NULL;
    struct xml_tmpl t;

    xml_tmpl_begin(&t, "TEMPLATE");
    xml_tmpl_add(&t, "NAME", a->name ? a->name : s->name);
    size_attr(&t, vm, "CPU", a->cpu);
    size_attr(&t, vm, "VCPU", vcpu);
    size_attr(&t, vm, "MEMORY", memory);
    xml_tmpl_open(&t, "DISK");
    xml_tmpl_addf(&t, "IMAGE_ID", "%d", s->id);
    xml_tmpl_close(&t, "DISK");
    if (vm) {
        copy_vectors(vm, &t, "OS", os_keys);
        copy_vectors(vm, &t, "FEATURES", features_keys);
        copy_vectors(vm, &t, "GRAPHICS", graphics_keys);
        copy_vectors(vm, &t, "NIC", nic_keys);
        copy_vectors(vm, &t, "CONTEXT", context_keys);
    }
    /* where it came from, in its user template */
    xml_tmpl_addf(&t, "QCOW2C_BOOTED_FROM", "%d", s->id);
    return xml_tmpl_end(&t);
}

int cmd_boot(struct one_client *c, const struct args *a)
{
    _cleanup_free_ char *tmpl = NULL;
    struct xml *img, *vm;
    struct snapimg s;
    int id, rc = -1;

    if (snap_load(c, a->image_id, &img, &s) < 0) {
        xml_free(img);
        return -1;
    }
    vm = vm_doc(c, s.vm_id);
    if (!vm && (!a->memory_mb || !a->cpu)) {
        fail_context("cannot read VM %d, where snapshot %d was saved (or give --memory and "
                     "--cpu)",
                     s.vm_id, s.id);
        goto out;
    }
    fail_reset(); /* an unreadable origin is no failure once the size is given */
    tmpl = boot_template(a, &s, vm);
    if (one_vm_allocate(c, tmpl, a->hold, &id) < 0)
        goto out;
    printf("%d\n", id);
    rc = 0;
out:
    snapimg_release(&s);
    xml_free(vm);
    xml_free(img);
    return rc;
}
