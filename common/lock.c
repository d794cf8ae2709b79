/* lock.c - bounded flock(2) locks in LOCK_DIR; see lock.h. */
#include "lock.h"

#include <sys/file.h>
#include <time.h>

#include "cleanup.h"
#include "config.h"
#include "fsutil.h"
#include "hostpath.h"
#include "log.h"
#include "run.h"

int lock_take(struct lock *l, const char *name, const char *what, unsigned timeout_s)
{
    const char *dir = config_str("LOCK_DIR");
    _cleanup_free_ char *path = NULL;
    long long deadline = monotonic_ms() + (long long)timeout_s * 1000;
    bool told = false;

    l->fd = -1;
    if (mkdir_p(dir, 0755) < 0)
        return -1;
    path = xasprintf("%s/%s.lock", dir, name);
    l->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (l->fd < 0)
        return fail_errno("cannot open lock file '%s'", path);
    for (;;) {
        struct timespec ts = { 0, 100 * 1000000L };

        if (flock(l->fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            fail_errno("cannot lock '%s'", path);
            break;
        }
        if (monotonic_ms() >= deadline) {
            fail("another action on %s is still running (waited %u s for its lock)", what,
                 timeout_s);
            break;
        }
        if (!told) {
            log_info("waiting for another action on %s to finish", what);
            told = true;
        }
        nanosleep(&ts, NULL);
    }
    closep(&l->fd);
    l->fd = -1;
    return -1;
}

/* Lock names for paths: the path itself with '/' turned into '%', so that
 * the name stays readable for an admin looking at LOCK_DIR. */
int lock_take_path(struct lock *l, const char *path, unsigned timeout_s)
{
    _cleanup_free_ char *norm = path_normalize(path);
    _cleanup_free_ char *name = NULL;
    size_t n = strlen(norm);

    if (n > 200) /* keep within NAME_MAX; the tail is the distinctive part */
        memmove(norm, norm + n - 200, 201);
    for (char *p = norm; *p; p++)
        if (*p == '/')
            *p = '%';
    name = xasprintf("path%s", norm);
    return lock_take(l, name, path, timeout_s);
}

void lock_release(struct lock *l)
{
    closep(&l->fd);
    l->fd = -1;
}
