/* fsutil.c - directory creation, removal, flushing and atomic publication. */
#include "fsutil.h"

#include <dirent.h>
#include <sys/statvfs.h>

#include "cleanup.h"
#include "hostpath.h"
#include "log.h"

char *part_name(const char *final)
{
    return xasprintf("%s.part", final);
}

int mkdir_p(const char *path, mode_t mode)
{
    _cleanup_free_ char *p = xstrdup(path);
    struct stat st;

    if (!*path)
        return fail("cannot create a directory with an empty name");
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;

        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return fail_errno("cannot create directory '%s'", p);
        *s = saved;
        if (!saved)
            break;
    }
    if (stat(path, &st) < 0)
        return fail_errno("cannot create directory '%s'", path);
    if (!S_ISDIR(st.st_mode))
        return fail("'%s' exists and is not a directory", path);
    return 0;
}

static int rm_at(int at, const char *name, const char *shown)
{
    struct stat st;

    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : fail_errno("cannot remove '%s'", shown);
    if (S_ISDIR(st.st_mode)) {
        int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *d;
        struct dirent *de;
        int rc = 0;

        if (fd < 0)
            return fail_errno("cannot remove '%s'", shown);
        d = fdopendir(fd);
        if (!d) {
            close(fd);
            return fail_errno("cannot remove '%s'", shown);
        }
        while ((de = readdir(d))) {
            if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                continue;
            _cleanup_free_ char *sub = path_join(shown, de->d_name);

            if (rm_at(dirfd(d), de->d_name, sub) < 0) {
                rc = -1;
                break;
            }
        }
        closedir(d);
        if (rc < 0)
            return -1;
        if (unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
            return fail_errno("cannot remove '%s'", shown);
        return 0;
    }
    if (unlinkat(at, name, 0) < 0 && errno != ENOENT)
        return fail_errno("cannot remove '%s'", shown);
    return 0;
}

int rm_rf(const char *path)
{
    _cleanup_free_ char *p = xstrdup(path);
    size_t n = strlen(p);

    /* A trailing '/' makes the kernel resolve a symlink ("link/" is its
     * target): remove the name itself, as for "link". */
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    return rm_at(AT_FDCWD, p, p);
}

int unlink_if_exists(const char *path)
{
    if (unlink(path) < 0 && errno != ENOENT)
        return fail_errno("cannot remove '%s'", path);
    return 0;
}

int fsync_fd(int fd, const char *name)
{
    if (fsync(fd) < 0 && errno != EINVAL && errno != EROFS)
        return fail_errno("cannot flush '%s' to disk", name);
    return 0;
}

int fsync_path(const char *path)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return fail_errno("cannot open '%s'", path);
    return fsync_fd(fd, path);
}

int fsync_dir_of(const char *path)
{
    _cleanup_free_ char *dir = path_dirname(path);

    return fsync_path(dir);
}

int publish(const char *tmp, const char *final)
{
    if (fsync_path(tmp) < 0)
        return -1;
    if (rename(tmp, final) < 0)
        return fail_errno("cannot rename '%s' to '%s'", tmp, final);
    return fsync_dir_of(final);
}

int fs_free_bytes(const char *path, uint64_t *free_bytes)
{
    struct statvfs sv;

    if (statvfs(path, &sv) < 0)
        return fail_errno("cannot read the free space of '%s'", path);
    *free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
    return 0;
}

int symlink_replace(const char *target, const char *path)
{
    _cleanup_free_ char *tmp = xasprintf("%s.lnk.%ld", path, (long)getpid());

    if (unlink_if_exists(tmp) < 0)
        return -1;
    if (symlink(target, tmp) < 0)
        return fail_errno("cannot create symlink '%s'", tmp);
    if (rename(tmp, path) < 0) {
        int e = errno;

        unlink(tmp);
        errno = e;
        return fail_errno("cannot replace '%s'", path);
    }
    return 0;
}
