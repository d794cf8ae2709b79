/* hostpath.c - host:path parsing and path normalisation; see hostpath.h. */
#include "hostpath.h"

#include "log.h"
#include "ssh.h"

char *path_normalize(const char *path)
{
    char *out = xmalloc(strlen(path) + 1);
    size_t n = 0;

    for (const char *p = path; *p; p++) {
        if (*p == '/' && n && out[n - 1] == '/')
            continue;
        out[n++] = *p;
    }
    if (n > 1 && out[n - 1] == '/')
        n--;
    out[n] = '\0';
    return out;
}

bool path_is_clean(const char *path)
{
    const char *p = path;

    if (*p != '/')
        return false;
    while (*p) {
        size_t len;

        p += strspn(p, "/");
        len = strcspn(p, "/");
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += len;
    }
    return true;
}

char *path_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}

const char *path_basename(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash ? slash + 1 : path;
}

char *path_join(const char *dir, const char *name)
{
    size_t dl = strlen(dir);

    if (dl && dir[dl - 1] == '/')
        return xasprintf("%s%s", dir, name);
    return xasprintf("%s/%s", dir, name);
}

static int parse(const char *arg, const char *what, struct hostpath *hp, bool need_host)
{
    const char *colon = strchr(arg, ':');
    const char *path = arg;

    hp->host = NULL;
    hp->path = NULL;
    if (str_empty(arg))
        return fail("the %s argument is empty", what);
    if (colon) {
        hp->host = xstrndup(arg, (size_t)(colon - arg));
        path = colon + 1;
        if (!ssh_host_valid(hp->host)) {
            fail("the %s '%s' has an invalid host name '%s' (ports and IPv6 addresses "
                 "belong in ~oneadmin/.ssh/config)",
                 what, arg, hp->host);
            goto bad;
        }
    } else if (need_host) {
        fail("the %s '%s' is not of the form host:/path", what, arg);
        goto bad;
    }
    if (*path != '/') {
        fail("the %s '%s' does not name an absolute path%s", what, arg,
             colon && strchr(path, ':') ? " (host:port is not supported; use ~/.ssh/config)"
                                        : "");
        goto bad;
    }
    hp->path = path_normalize(path);
    if (!path_is_clean(hp->path)) {
        fail("the %s '%s' contains '.' or '..' components", what, arg);
        goto bad;
    }
    return 0;
bad:
    hostpath_release(hp);
    return -1;
}

int hostpath_parse(const char *arg, const char *what, struct hostpath *hp)
{
    return parse(arg, what, hp, false);
}

int hostpath_parse_remote(const char *arg, const char *what, struct hostpath *hp)
{
    return parse(arg, what, hp, true);
}

void hostpath_release(struct hostpath *hp)
{
    free(hp->host);
    free(hp->path);
    hp->host = NULL;
    hp->path = NULL;
}
