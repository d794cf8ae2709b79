/*
 * context [FILE...] HOST:VM_DIR/disk.N VM_ID DS_ID
 *
 * The context CD-ROM of a VM (protocol §2.3 context), run by the VMM driver
 * at deploy, restore and context updates; DS_ID is the system datastore.
 * FILE forms, as OpenNebula's common/context takes them:
 *   /path            copied into the CD under its own name (a directory
 *                    with its content); symlinks are followed
 *   /path:'name'     copied as `name` (FILES_DS images: SOURCE:'image name')
 *   http(s)://...    downloaded, named after the URL's last component
 * The first FILE is the VM's context.sh; empty words are ignored (oned puts
 * a double space in the line when CONTEXT/FILES is empty).
 *
 * The ISO is built on the front-end (`xorriso -as mkisofs -V CONTEXT -J
 * -R`) in <datastores>/.isofiles/<VM_ID>/, then streamed to HOST through one
 * ssh as disk.N.part.<pid>, flushed there and renamed to disk.N; the front-end
 * directory is removed whatever happens. A re-run builds and ships a fresh
 * ISO (oned regenerates context.sh before each run).
 * Refused: relative paths and '.'/'..' components, names with '/', quotes,
 * '\', '$', '`' or control characters (stock evaluates names in a shell), a
 * destination other than disk.N of this VM with a host.
 */
#include "tm_actions.h"

#include "cleanup.h"
#include "config.h"
#include "copy.h"
#include "fsutil.h"
#include "log.h"
#include "provision.h"
#include "ssh.h"
#include "stream.h"

struct ctx_file {
    char *src;  /* path or URL */
    char *name; /* name in the CD */
    bool url;
};

static void files_release(struct ctx_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].src);
        free(f[i].name);
    }
    free(f);
}

static bool name_ok(const char *name)
{
    if (str_empty(name) || streq(name, ".") || streq(name, ".."))
        return false;
    for (const char *p = name; *p; p++)
        if (strchr("/'\"\\$`", *p) || (unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* The last component of a URL's path, as wget names what it saves. */
static char *url_name(const char *url)
{
    const char *p = strstr(url, "://") + 3;
    size_t end = strcspn(p, "?#");
    const char *slash = memrchr(p, '/', end);

    if (!slash || (size_t)(slash - p) + 1 == end)
        return xstrdup("index.html");
    return xstrndup(slash + 1, end - (size_t)(slash - p) - 1);
}

static int parse_file(const char *arg, struct ctx_file *f)
{
    const char *colon;

    memset(f, 0, sizeof(*f));
    if (is_http_url(arg)) {
        f->url = true;
        f->src = xstrdup(arg);
        f->name = url_name(arg);
    } else if ((colon = strchr(arg, ':'))) {
        size_t len = strlen(colon + 1);

        f->src = xstrndup(arg, (size_t)(colon - arg));
        if (len >= 2 && colon[1] == '\'' && colon[len] == '\'')
            f->name = xstrndup(colon + 2, len - 2);
        else
            f->name = xstrdup(colon + 1);
    } else {
        f->src = xstrdup(arg);
        f->name = xstrdup(path_basename(arg));
    }
    if (!f->url && !path_is_clean(f->src))
        return fail("the context file '%s' is not an absolute path without '.' or '..'", arg);
    if (!name_ok(f->name))
        return fail("the context file '%s' would get the name '%s', which is not a plain "
                    "file name",
                    arg, f->name);
    return 0;
}

static int fetch(const struct ctx_file *f, const char *to)
{
    _cleanup_close_ int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    struct sink *s;
    int rc;

    if (fd < 0)
        return fail_errno("cannot create '%s'", to);
    s = file_sink_new(fd, to, false);
    rc = http_fetch(f->src, s, 0);
    if (rc == 0)
        rc = sink_close(s);
    sink_free(s);
    return rc;
}

static int gather(const struct ctx_file *f, const char *dir)
{
    _cleanup_free_ char *to = path_join(dir, f->name);
    struct copy_result res;
    struct stat st;

    if (rm_rf(to) < 0) /* the same name twice: the last one wins, as with cp */
        return -1;
    if (f->url)
        return fetch(f, to);
    if (stat(f->src, &st) < 0)
        return fail_errno("cannot read the context file '%s'", f->src);
    if (S_ISDIR(st.st_mode)) {
        struct cmd c = CMD_INIT;
        int rc;

        strvec_pushl(&c.args, "cp", "-R", "-L", "--", f->src, to, NULL);
        c.timeout_s = config_uint("COPY_TIMEOUT");
        rc = cmd_run(&c);
        cmd_release(&c);
        return rc;
    }
    return copy_file(f->src, to, true, &res);
}

static int make_iso(const char *files, const char *iso)
{
    struct cmd c = CMD_INIT;
    int rc;

    strvec_pushl(&c.args, "xorriso", "-as", "mkisofs", "-o", iso, "-V", "CONTEXT", "-J", "-R",
                 files, NULL);
    rc = cmd_run(&c);
    cmd_release(&c);
    return rc;
}

/* The ISO on stdin of one command on the host (through ssh unless the host
 * is this machine): make the VM directory, write disk.N.part.<its pid>,
 * flush, rename. The parts of earlier attempts go first: one whose ssh is
 * still streaming (its action was killed) can then never rename its file
 * over this one. */
static const char ship_script[] =
    "p=\"$2.part.$$\"; mkdir -p -- \"$1\" && rm -f -- \"$2\".part* && cat >\"$p\" && "
    "sync -- \"$p\" && mv -fT -- \"$p\" \"$2\" && sync -- \"$1\"";

static int ship(const char *iso, const struct vm_path *vp)
{
    const char *const remote[] = { "sh", "-c", ship_script, "sh", vp->vm_dir, vp->path, NULL };
    _cleanup_close_ int fd = open(iso, O_RDONLY | O_CLOEXEC);
    struct cmd c = CMD_INIT;
    int rc = 0;

    if (fd < 0)
        return fail_errno("cannot read '%s'", iso);
    if (host_name_is_local(vp->host))
        strvec_pushv(&c.args, remote);
    else
        rc = ssh_cmd(&c, vp->host, remote);
    c.in_fd = fd;
    c.timeout_s = config_uint("COPY_TIMEOUT");
    c.what = "copying the context ISO";
    if (rc == 0)
        rc = cmd_run(&c);
    cmd_release(&c);
    return rc < 0 ? fail_context("%s:%s", vp->host, vp->path) : 0;
}

static int build_and_ship(struct ctx_file *files, size_t n, const struct vm_path *vp,
                          const char *work)
{
    _cleanup_free_ char *dir = path_join(work, "files");
    _cleanup_free_ char *iso = path_join(work, "context.iso");

    if (rm_rf(work) < 0 || mkdir_p(dir, 0755) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (gather(&files[i], dir) < 0)
            return -1;
    if (make_iso(dir, iso) < 0)
        return -1;
    return ship(iso, vp);
}

static int context_run(struct tm *t, struct action_ctx *ctx)
{
    int nargs = ctx->argc - 3;
    struct ctx_file *files = xcalloc((size_t)nargs + 1, sizeof(*files));
    struct vm_path vp;
    _cleanup_free_ char *work = NULL;
    size_t n = 0;
    int ds_id, rc = -1;

    if (prov_ds_id(ctx->argv[ctx->argc - 1], &ds_id) < 0 ||
        prov_disk_arg(ctx->argv[nargs], t->vmid, &vp) < 0) {
        free(files);
        return -1;
    }
    for (int i = 0; i < nargs; i++) {
        if (!*ctx->argv[i])
            continue;
        if (parse_file(ctx->argv[i], &files[n++]) < 0)
            goto out;
    }
    work = xasprintf("%s/.isofiles/%d", vp.ds_root, t->vmid);
    log_info("making the context CD %s:%s (%zu files)", vp.host, vp.path, n);
    rc = build_and_ship(files, n, &vp, work);
    if (rm_rf(work) < 0 && rc == 0)
        rc = -1;
out:
    files_release(files, n);
    vm_path_release(&vp);
    return rc;
}

int tm_context(struct action_ctx *ctx)
{
    struct tm t;
    int rc;

    if (tm_start(&t, ctx) < 0)
        return -1;
    rc = context_run(&t, ctx);
    tm_end(&t);
    return rc;
}
