/*
 * premigrate  SRC_HOST DST_HOST VM_DIR VM_ID DS_ID [CALLER_TM]  (stdin: base64 VM)
 * postmigrate SRC_HOST DST_HOST VM_DIR VM_ID DS_ID [CALLER_TM]  (stdin: base64 VM)
 * failmigrate SRC_HOST DST_HOST VM_DIR VM_ID DS_ID [CALLER_TM]  (stdin: base64 VM)
 *
 * The live-migration hooks the VMM driver runs around a migration (protocol
 * §1.4 step 5, §2.3 premigrate/postmigrate, traps 28, 29). VM_DIR is the
 * VM's directory (no host) in system datastore DS_ID. As OpenNebula's
 * qcow2 (shared storage: nothing to copy):
 *  - premigrate: nothing on the hosts; when the hosts differ, "migrate
 *    other" (below). A failure here aborts the migration.
 *  - postmigrate: when the VM's previous history record has another system
 *    datastore, the VM's directory there (<datastores>/<old ds>/<vm id>) is
 *    removed on SRC_HOST (unless it is VM_DIR itself under another name);
 *    then, unless the hosts are the same and the datastore did not change,
 *    "migrate other". Failures are only logged by oned.
 *  - failmigrate: nothing.
 *  - With CALLER_TM (another TM's own migrate_other calling qcow2c for its
 *    disks): exit 0 at once; the caller's system TM does the work.
 * "Migrate other": every other TM named by a disk of the VM
 * (DISK/TM_MAD) runs the same action, REMOTES/tm/<tm>/<action>, with the
 * same five arguments plus "qcow2c" (the name of this TM's directory) and
 * the same stdin; its result is ignored, as OpenNebula does, and a failure
 * is logged.
 * The VM comes from stdin (one_vmm_exec's base64 of the VM document);
 * oned is asked only by postmigrate, for the previous history record,
 * which that document does not carry (it holds the last record only).
 * Re-run: nothing is created; removing a directory twice is harmless.
 * Refused: a VM_DIR that is not <datastores>/DS_ID/VM_ID, host names ssh
 * would misread, a stdin that is not a base64 VM document of VM_ID.
 */
#include "tm_actions.h"

#include <sys/auxv.h>

#include "b64.h"
#include "cleanup.h"
#include "config.h"
#include "hostpath.h"
#include "log.h"
#include "provision.h"
#include "ssh.h"
#include "transfer.h"

extern char **environ;

struct mig {
    struct tm *t;
    struct action_ctx *ctx;
    const char *src_host, *dst_host;
    struct vm_path vp;
    int ds_id;
    struct sbuf in; /* stdin as received */
    struct xml *vm; /* decoded */
};

static void mig_release(struct mig *m)
{
    vm_path_release(&m->vp);
    sbuf_release(&m->in);
    xml_free(m->vm);
}

/* The VMM driver writes the whole document at once and closes the pipe;
 * it is read (and so drained) even when not used. */
static int read_stdin(struct sbuf *in)
{
    if (isatty(STDIN_FILENO))
        return 0;
    if (sbuf_read_fd(in, STDIN_FILENO, 64u << 20) < 0)
        return fail_errno("cannot read the VM document from stdin");
    sbuf_rtrim(in);
    return 0;
}

/* The VM document from stdin, decoded on first use. */
static int load_vm(struct mig *m)
{
    struct sbuf xml = SBUF_INIT;
    long long id;
    int rc = 0;

    if (m->vm)
        return 0;
    if (!m->in.len)
        return fail("no VM document on stdin (the VMM driver sends it base64-encoded)");
    if (b64_decode(m->in.buf, m->in.len, &xml) < 0) {
        rc = fail_context("the VM document on stdin");
        goto out;
    }
    m->vm = xml_doc_parse(xml.buf, xml.len, "VM");
    if (!m->vm) {
        rc = fail_context("the VM document on stdin");
        goto out;
    }
    if (xml_get_int(m->vm, &id, "/VM/ID") < 0 || id != m->t->vmid)
        rc = fail("the VM document on stdin is not the one of VM %d", m->t->vmid);
out:
    sbuf_release(&xml);
    return rc;
}

static int parse_args(struct mig *m)
{
    char **argv = m->ctx->argv;

    m->src_host = argv[0];
    m->dst_host = argv[1];
    if (!ssh_host_valid(m->src_host) || !ssh_host_valid(m->dst_host))
        return fail("'%s' and '%s' are not both valid host names", argv[0], argv[1]);
    if (prov_ds_id(argv[4], &m->ds_id) < 0 ||
        vm_path_parse(argv[2], m->t->vmid, "VM directory", &m->vp) < 0)
        return -1;
    if (m->vp.host || m->vp.kind != VM_PATH_DIR || m->vp.sys_ds_id != m->ds_id)
        return fail("'%s' is not the directory of VM %d in datastore %d "
                    "(<datastores>/%d/%d)",
                    argv[2], m->t->vmid, m->ds_id, m->ds_id, m->t->vmid);
    return 0;
}

/* ---- the other TMs of the VM's disks ---- */

/* The program's own path as exec'd (oned runs remotes/tm/<name>/<action>). */
static char *exec_path(void)
{
    const char *fn = (const char *)getauxval(AT_EXECFN);
    char cwd[PATH_MAX];

    if (!fn || !*fn)
        return NULL;
    if (fn[0] == '/')
        return path_normalize(fn);
    if (!getcwd(cwd, sizeof(cwd)))
        return NULL;
    return path_join(cwd, fn);
}

static bool tm_name_valid(const char *s)
{
    return !str_empty(s) && !streq(s, ".") && !streq(s, "..") &&
           s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")] ==
               '\0';
}

/* Our environment for another driver's script: what the VMM driver gave
 * us (ONE_LOCATION, ONE_AUTH...), as OpenNebula's scripts pass it on,
 * besides the variables run.h sets itself. */
static void pass_env(struct strvec *env)
{
    static const char *const own[] = { "PATH=",   "HOME=",          "USER=",   "LOGNAME=",
                                       "TMPDIR=", "SSH_AUTH_SOCK=", "LC_ALL=", "LANG=" };

    for (char **e = environ; e && *e; e++) {
        bool skip = !strchr(*e, '=');

        for (size_t i = 0; i < ARRAY_SIZE(own) && !skip; i++)
            skip = starts_with(*e, own[i]);
        if (!skip)
            strvec_push(env, *e);
    }
}

static void run_other(struct mig *m, const char *dir, const char *tm, const char *self)
{
    _cleanup_free_ char *prog = xasprintf("%s/%s/%s", dir, tm, m->ctx->name);
    struct cmd c = CMD_INIT;

    if (access(prog, X_OK) < 0) {
        log_warn("%s of the TM %s (disks of VM %d) is not there: skipped", m->ctx->name, tm,
                 m->t->vmid);
        return;
    }
    log_info("calling %s/%s", tm, m->ctx->name);
    strvec_push(&c.args, prog);
    for (int i = 0; i < 5; i++)
        strvec_push(&c.args, m->ctx->argv[i]);
    strvec_push(&c.args, self);
    pass_env(&c.env);
    c.in = m->in.buf;
    c.in_len = m->in.len;
    c.timeout_s = config_uint("COPY_TIMEOUT");
    if (cmd_run_status(&c) < 0) {
        log_warn("%s/%s: %s (ignored)", tm, m->ctx->name, fail_reason());
        fail_reset();
    } else if (c.status != 0) {
        struct sbuf why = SBUF_INIT;

        sbuf_rtrim(&c.err);
        sbuf_add_oneline(&why, c.err.buf, c.err.len > 400 ? 400 : c.err.len);
        log_warn("%s/%s failed with exit code %d (ignored)%s%s", tm, m->ctx->name, c.status,
                 why.len ? ": " : "", why.buf);
        sbuf_release(&why);
    }
    cmd_release(&c);
}

static int migrate_other(struct mig *m)
{
    _cleanup_free_ char *self_path = exec_path();
    _cleanup_free_ char *tm_dir = NULL, *remotes_tm = NULL;
    struct strvec tms = STRVEC_INIT, done = STRVEC_INIT;
    const char *self;

    if (load_vm(m) < 0)
        return -1;
    if (!self_path) {
        log_warn("cannot tell where this driver is installed: other TMs not called");
        return 0;
    }
    tm_dir = path_dirname(self_path);
    remotes_tm = path_dirname(tm_dir);
    self = path_basename(tm_dir);
    xml_get_all(m->vm, &tms, "/VM/TEMPLATE/DISK/TM_MAD");
    for (size_t i = 0; i < tms.nr; i++) {
        const char *tm = tms.v[i];
        bool seen = streq(tm, self) || str_empty(tm);

        for (size_t j = 0; j < done.nr && !seen; j++)
            seen = streq(done.v[j], tm);
        if (seen)
            continue;
        strvec_push(&done, tm);
        if (!tm_name_valid(tm)) {
            log_warn("disk TM_MAD '%s' is not a driver name: not called", tm);
            continue;
        }
        run_other(m, remotes_tm, tm, self);
    }
    strvec_clear(&tms);
    strvec_clear(&done);
    return 0;
}

/* ---- the hooks ---- */

static int premigrate(struct mig *m)
{
    if (streq(m->src_host, m->dst_host)) {
        log_info("%s is both source and destination: nothing to do", m->src_host);
        return 0;
    }
    return migrate_other(m);
}

/* DS_ID of the history record before the last: in the document on stdin
 * when it has it, else from oned. -1 when unknown. */
static int previous_ds(struct mig *m, int *ds)
{
    const struct xml *vm;
    long long v;

    *ds = -1;
    if (load_vm(m) < 0)
        return -1;
    vm = m->vm;
    if (xml_count(vm, "/VM/HISTORY_RECORDS/HISTORY") < 2) {
        vm = tm_vm(m->t);
        if (!vm) {
            log_warn("cannot read VM %d's previous history record: %s", m->t->vmid, fail_reason());
            fail_reset();
            return 0;
        }
    }
    if (xml_count(vm, "/VM/HISTORY_RECORDS/HISTORY") < 2) {
        log_warn("VM %d has no previous history record", m->t->vmid);
        return 0;
    }
    if (xml_get_int(vm, &v, "/VM/HISTORY_RECORDS/HISTORY[last()-1]/DS_ID") < 0 || v < 0 ||
        v > INT_MAX) {
        log_warn("VM %d's previous history record has no valid DS_ID", m->t->vmid);
        fail_reset();
        return 0;
    }
    *ds = (int)v;
    return 0;
}

/* $1 the old directory, $2 the current one. */
static const char remove_old_script[] =
    "[ -e \"$1\" ] || [ -L \"$1\" ] || exit 0; [ \"$1\" -ef \"$2\" ] && exit 0; rm -rf -- \"$1\"";

static int postmigrate(struct mig *m)
{
    int prev;

    if (previous_ds(m, &prev) < 0)
        return -1;
    if (prev >= 0 && prev != m->ds_id) {
        _cleanup_free_ char *old = xasprintf("%s/%d/%d", m->vp.ds_root, prev, m->t->vmid);
        _cleanup_free_ char *what = xasprintf("removing %s", old);
        struct host *h = tm_host(m->t, m->src_host);

        log_info("VM %d left system datastore %d: removing %s on %s", m->t->vmid, prev, old,
                 m->src_host);
        if (!h || xfer_sh(h, what, 0, NULL, remove_old_script, old, m->vp.path, NULL) < 0)
            return fail_context("cannot remove the VM's old directory");
    } else if (streq(m->src_host, m->dst_host)) {
        log_info("%s is both source and destination: nothing to do", m->src_host);
        return 0;
    }
    return migrate_other(m);
}

static int hook(struct action_ctx *ctx, int (*fn)(struct mig *))
{
    struct tm t;
    struct mig m = { .t = &t, .ctx = ctx, .in = SBUF_INIT };
    int rc;

    if (ctx->argc == 6) {
        /* Another TM's migrate_other calls us for our disks: its system
         * TM does the work, and calling others again could loop. */
        log_debug("called by %s for its disks: nothing to do", ctx->argv[5]);
        read_stdin(&m.in);
        sbuf_release(&m.in);
        fail_reset(); /* drained only so that the caller's pipe does not break */
        return 0;
    }
    if (tm_start(&t, ctx) < 0)
        return -1;
    rc = parse_args(&m);
    if (rc == 0)
        rc = read_stdin(&m.in);
    if (rc == 0 && fn)
        rc = fn(&m);
    mig_release(&m);
    tm_end(&t);
    return rc;
}

int tm_premigrate(struct action_ctx *ctx)
{
    return hook(ctx, premigrate);
}

int tm_postmigrate(struct action_ctx *ctx)
{
    return hook(ctx, postmigrate);
}

int tm_failmigrate(struct action_ctx *ctx)
{
    return hook(ctx, NULL);
}
