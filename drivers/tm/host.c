/* host.c - commands on cloud hosts, over one ssh session or locally. */
#include "host.h"

#include <dirent.h>
#include <inttypes.h>

#include "cleanup.h"
#include "config.h"
#include "fsutil.h"
#include "hostpath.h"
#include "log.h"
#include "ssh.h"

struct host {
    char *name;
    bool local;
    struct rsh *rsh; /* opened on first remote command */
};

bool host_name_is_local(const char *name)
{
    char self[256];
    struct strvec extra = STRVEC_INIT;
    bool local = streq(name, "localhost");

    if (!local && gethostname(self, sizeof(self)) == 0) {
        self[sizeof(self) - 1] = '\0';
        local = streq(name, self);
    }
    config_words("LOCAL_HOSTS", &extra);
    for (size_t i = 0; i < extra.nr && !local; i++)
        local = streq(name, extra.v[i]);
    strvec_clear(&extra);
    return local;
}

struct host *host_new(const char *name)
{
    struct host *h;

    if (!ssh_host_valid(name)) {
        fail("'%s' is not a valid host name", name ? name : "");
        return NULL;
    }
    h = xcalloc(1, sizeof(*h));
    h->name = xstrdup(name);
    h->local = host_name_is_local(name);
    return h;
}

void host_free(struct host *h)
{
    if (!h)
        return;
    rsh_close(h->rsh);
    free(h->name);
    free(h);
}

const char *host_name(const struct host *h)
{
    return h->name;
}

bool host_is_local(const struct host *h)
{
    return h->local;
}

static int connect(struct host *h)
{
    if (h->rsh)
        return 0;
    h->rsh = rsh_open(h->name);
    return h->rsh ? 0 : -1;
}

int host_run_status(struct host *h, struct cmd *c)
{
    if (h->local)
        return cmd_run_status(c);
    if (connect(h) < 0)
        return -1;
    return rsh_run_status(h->rsh, c);
}

int host_run(struct host *h, struct cmd *c)
{
    if (h->local)
        return cmd_run(c);
    if (connect(h) < 0)
        return -1;
    return rsh_run(h->rsh, c);
}

static int run_argv(struct host *h, struct strvec *argv)
{
    struct cmd c = CMD_INIT;
    int rc;

    strvec_pushv(&c.args, argv->v);
    rc = host_run(h, &c);
    cmd_release(&c);
    return rc;
}

int host_runl(struct host *h, const char *arg0, ...)
{
    struct strvec argv = STRVEC_INIT;
    const char *a;
    va_list ap;
    int rc;

    strvec_push(&argv, arg0);
    va_start(ap, arg0);
    while ((a = va_arg(ap, const char *)))
        strvec_push(&argv, a);
    va_end(ap);
    rc = run_argv(h, &argv);
    strvec_clear(&argv);
    return rc;
}

/* ---- queries ---- */

void rstat_release(struct rstat *st)
{
    free(st->target);
    st->target = NULL;
}

static int local_stat(const char *path, struct rstat *st)
{
    struct stat sb;

    if (lstat(path, &sb) < 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            return fail_errno("cannot examine '%s'", path);
        st->kind = 'N';
        return 0;
    }
    if (S_ISLNK(sb.st_mode)) {
        char buf[PATH_MAX];
        ssize_t n = readlink(path, buf, sizeof(buf) - 1);

        if (n < 0)
            return fail_errno("cannot read link '%s'", path);
        buf[n] = '\0';
        st->kind = 'L';
        st->target = xstrdup(buf);
    } else {
        st->kind = S_ISDIR(sb.st_mode) ? 'D' : S_ISREG(sb.st_mode) ? 'F' : 'O';
    }
    return 0;
}

/* One record "K[target]\0" for the path in $1. */
static const char stat_script[] =
    "p=$1; if [ -L \"$p\" ]; then t=$(readlink -- \"$p\") || exit 1; printf 'L%s\\0' \"$t\"; "
    "elif [ -d \"$p\" ]; then printf 'D\\0'; elif [ -f \"$p\" ]; then printf 'F\\0'; "
    "elif [ -e \"$p\" ]; then printf 'O\\0'; else printf 'N\\0'; fi";

int host_stat(struct host *h, const char *path, struct rstat *st)
{
    struct cmd c = CMD_INIT;
    int rc;

    st->kind = 'N';
    st->target = NULL;
    if (h->local)
        return local_stat(path, st);
    strvec_pushl(&c.args, "sh", "-c", stat_script, "sh", path, NULL);
    rc = host_run(h, &c);
    if (rc == 0 && (c.out.len < 2 || c.out.buf[c.out.len - 1] != '\0' ||
                    !strchr("NFDLO", c.out.buf[0])))
        rc = fail("unexpected answer from %s while examining '%s'", h->name, path);
    if (rc == 0) {
        st->kind = c.out.buf[0];
        if (st->kind == 'L')
            st->target = xstrdup(c.out.buf + 1);
    }
    cmd_release(&c);
    return rc;
}

static const char list_script[] =
    "[ -d \"$1\" ] || exit 0; exec find \"$1\" -mindepth 1 -maxdepth 1 -printf '%f\\0'";

int host_list(struct host *h, const char *dir, struct strvec *names)
{
    struct cmd c = CMD_INIT;
    int rc;

    if (h->local) {
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
            return errno == ENOENT ? 0 : fail_errno("cannot list '%s'", dir);
        while ((de = readdir(d)))
            if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                strvec_push(names, de->d_name);
        closedir(d);
        return 0;
    }
    strvec_pushl(&c.args, "sh", "-c", list_script, "sh", dir, NULL);
    rc = host_run(h, &c);
    for (size_t off = 0; rc == 0 && off < c.out.len;) {
        const char *name = c.out.buf + off;
        size_t n = strnlen(name, c.out.len - off);

        strvec_push(names, name);
        off += n + 1;
    }
    cmd_release(&c);
    return rc;
}

int host_probe_image(struct host *h, const char *path, struct image_info *ii)
{
    struct cmd c = CMD_INIT;
    int rc;

    if (h->local)
        return image_probe_path(path, ii);
    memset(ii, 0, sizeof(*ii));
    strvec_pushl(&c.args, "dd", "bs=65536", "count=1", "status=none", NULL);
    strvec_pushf(&c.args, "if=%s", path);
    rc = host_run(h, &c);
    if (rc == 0)
        rc = image_probe_buf(c.out.buf, c.out.len, 0, ii);
    if (rc == 0 && streq(ii->format, "raw")) {
        /* a raw image's size is the file's: ask for it */
        struct cmd s = CMD_INIT;
        uint64_t sz = 0;

        strvec_pushl(&s.args, "stat", "-L", "-c", "%s", "--", path, NULL);
        rc = host_run(h, &s);
        if (rc == 0 && sscanf(s.out.buf, "%" SCNu64, &sz) == 1) {
            ii->virtual_size = sz;
            ii->size_known = true;
        }
        cmd_release(&s);
    }
    cmd_release(&c);
    return rc < 0 ? fail_context("cannot read the image header of %s:%s", h->name, path) : 0;
}

int host_read_file(struct host *h, const char *path, struct sbuf *out)
{
    struct cmd c = CMD_INIT;
    int rc;

    if (h->local)
        return sbuf_read_file(out, path, 1 << 20) < 0
                   ? fail_errno("cannot read '%s'", path)
                   : 0;
    strvec_pushl(&c.args, "cat", "--", path, NULL);
    rc = host_run(h, &c);
    if (rc == 0)
        sbuf_add(out, c.out.buf, c.out.len);
    cmd_release(&c);
    return rc;
}

/* ---- changes ---- */

/* On the front-end itself these are system calls (common/fsutil.h); on a
 * host each is one command. Temporary names carry the remote shell's pid, so
 * an orphaned command of a killed earlier attempt (it runs on until its time
 * limit) never shares a name with the retry. */

int host_mkdir_p(struct host *h, const char *dir)
{
    if (h->local)
        return mkdir_p(dir, 0755);
    return host_runl(h, "mkdir", "-p", "--", dir, NULL);
}

int host_rm_rf(struct host *h, const char *path)
{
    if (h->local)
        return rm_rf(path);
    return host_runl(h, "rm", "-rf", "--", path, NULL);
}

static const char symlink_script[] =
    "ln -s -- \"$1\" \"$2.lnk.$$\" && mv -fT -- \"$2.lnk.$$\" \"$2\" || "
    "{ rm -f -- \"$2.lnk.$$\"; exit 1; }";

int host_symlink(struct host *h, const char *target, const char *link)
{
    if (h->local)
        return symlink_replace(target, link);
    return host_runl(h, "sh", "-c", symlink_script, "sh", target, link, NULL);
}

int host_rename(struct host *h, const char *from, const char *to)
{
    if (h->local)
        return rename(from, to) < 0 ? fail_errno("cannot rename '%s' to '%s'", from, to) : 0;
    return host_runl(h, "mv", "-fT", "--", from, to, NULL);
}

int host_sync(struct host *h, const char *path)
{
    if (h->local)
        return fsync_path(path);
    return host_runl(h, "sync", "--", path, NULL);
}

static const char publish_script[] = "sync -- \"$1\" && mv -fT -- \"$1\" \"$2\" && sync -- \"$3\"";

int host_publish(struct host *h, const char *tmp, const char *final)
{
    _cleanup_free_ char *dir = path_dirname(final);

    if (h->local)
        return publish(tmp, final);
    return host_runl(h, "sh", "-c", publish_script, "sh", tmp, final, dir, NULL);
}

static const char write_script[] =
    "printf '%s' \"$1\" > \"$2.part.$$\" && sync -- \"$2.part.$$\" && "
    "mv -fT -- \"$2.part.$$\" \"$2\" || { rm -f -- \"$2.part.$$\"; exit 1; }";

int host_write_file(struct host *h, const char *path, const char *data)
{
    return host_runl(h, "sh", "-c", write_script, "sh", data, path, NULL);
}
