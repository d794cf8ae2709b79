/* test_lock.c - front-end locks between concurrent actions: waiting, the
 * time bound, a killed holder, and lock files that stay in LOCK_DIR. */
#include "testlib.h"

#include <criterion/redirect.h>
#include <dirent.h>
#include <signal.h>
#include <time.h>
#include <sys/wait.h>

#include "fsutil.h"
#include "lock.h"
#include "run.h"

static char *lock_dir;

static void setup(void)
{
    char *d = test_tmpdir();
    char *extra;

    char *conf = xasprintf("%s/qcow2c.conf", d);

    lock_dir = xasprintf("%s/locks", d);
    extra = xasprintf("LOCK_DIR=\"%s\"\n", lock_dir);
    test_write_file(conf, extra);
    cr_assert_eq(config_load_file(conf), 0, "%s", fail_reason());
    free(conf);
    free(extra);
    free(d);
}

TestSuite(lock, .init = setup, .timeout = 60);

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Entries of LOCK_DIR, sorted, "name/" for directories. */
static void lock_dir_entries(struct strvec *out)
{
    DIR *d = opendir(lock_dir);
    struct dirent *de;
    struct strvec names = STRVEC_INIT;

    cr_assert_not_null(d, "%s: %s", lock_dir, strerror(errno));
    while ((de = readdir(d))) {
        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
            continue;
        strvec_pushf(&names, "%s%s", de->d_name, de->d_type == DT_DIR ? "/" : "");
    }
    closedir(d);
    qsort(names.v, names.nr, sizeof(*names.v), cmp_str);
    strvec_pushv(out, names.v);
    strvec_clear(&names);
}

Test(lock, take_and_release)
{
    struct lock l = LOCK_INIT;
    char *path = xasprintf("%s/vm-42.lock", lock_dir);
    struct stat st;

    cr_assert_eq(lock_take(&l, "vm-42", "VM 42", 5), 0, "%s", fail_reason());
    cr_assert_geq(l.fd, 0);
    cr_assert_eq(stat(path, &st), 0, "the lock file is %s", path);
    cr_assert(S_ISREG(st.st_mode));
    cr_assert(fcntl(l.fd, F_GETFD) & FD_CLOEXEC, "not inherited by children");
    lock_release(&l);
    cr_assert_eq(l.fd, -1);
    lock_release(&l); /* twice is fine */
    cr_assert_eq(l.fd, -1);
    /* taken again right away */
    cr_assert_eq(lock_take(&l, "vm-42", "VM 42", 0), 0, "%s", fail_reason());
    lock_release(&l);
    cr_assert(!failed());
    free(path);
}

Test(lock, release_of_an_untaken_lock)
{
    struct lock l = LOCK_INIT;

    lock_release(&l);
    cr_assert_eq(l.fd, -1);
}

Test(lock, lock_dir_is_created)
{
    struct lock l = LOCK_INIT;
    struct stat st;

    cr_assert_neq(stat(lock_dir, &st), 0, "does not exist before");
    cr_assert_eq(lock_take(&l, "vm-1", "VM 1", 1), 0, "%s", fail_reason());
    cr_assert_eq(stat(lock_dir, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    lock_release(&l);
}

Test(lock, different_names_do_not_conflict)
{
    struct lock a = LOCK_INIT, b = LOCK_INIT;

    cr_assert_eq(lock_take(&a, "vm-1", "VM 1", 0), 0);
    cr_assert_eq(lock_take(&b, "vm-2", "VM 2", 0), 0, "%s", fail_reason());
    lock_release(&a);
    lock_release(&b);
}

/* Two descriptions of the same file conflict even in one process. */
Test(lock, timeout_gives_the_documented_reason_within_the_bound)
{
    struct lock a = LOCK_INIT, b = LOCK_INIT;
    long long t0, took;

    cr_assert_eq(lock_take(&a, "vm-42", "VM 42", 0), 0);
    cr_redirect_stderr();
    t0 = monotonic_ms();
    cr_assert_eq(lock_take(&b, "vm-42", "VM 42", 1), -1);
    took = monotonic_ms() - t0;
    cr_assert_eq(b.fd, -1, "no descriptor left open");
    cr_assert_str_eq(fail_reason(),
                     "another action on VM 42 is still running (waited 1 s for its lock)");
    cr_assert_geq(took, 950, "gave up after %lld ms", took);
    cr_assert_lt(took, 1600, "waited %lld ms for a 1 s limit", took);
    lock_release(&a);
}

Test(lock, zero_timeout_does_not_wait)
{
    struct lock a = LOCK_INIT, b = LOCK_INIT;
    long long t0, took;

    cr_assert_eq(lock_take(&a, "image", "image 7", 0), 0);
    t0 = monotonic_ms();
    cr_assert_eq(lock_take(&b, "image", "image 7", 0), -1);
    took = monotonic_ms() - t0;
    cr_assert_lt(took, 300, "%lld ms", took);
    cr_assert_str_eq(fail_reason(),
                     "another action on image 7 is still running (waited 0 s for its lock)");
    lock_release(&a);
}

/* Capture of a child's stderr into a pipe. */
struct rival {
    pid_t pid;
    int err;    /* read end of its stderr */
    int report; /* read end of its report pipe */
};

/* The child takes the lock (timeout `timeout_s`) and reports
 * "<rc> <ms waited>\n" on its report pipe, then releases and exits. */
static struct rival contender(const char *name, unsigned timeout_s, int inherited)
{
    int err[2], rep[2];
    struct rival c;

    cr_assert_eq(pipe(err), 0);
    cr_assert_eq(pipe(rep), 0);
    c.pid = fork();
    cr_assert_geq(c.pid, 0);
    if (c.pid == 0) {
        struct lock l = LOCK_INIT;
        long long t0 = monotonic_ms();
        char buf[64];
        int rc, n;

        /* a forked child shares our open file description, and with it
         * our flock: it must close its copy to be a real contender */
        if (inherited >= 0)
            close(inherited);
        dup2(err[1], STDERR_FILENO);
        close(err[0]);
        close(err[1]);
        close(rep[0]);
        log_setup("clone", 42);
        rc = lock_take(&l, name, "VM 42", timeout_s);
        n = snprintf(buf, sizeof(buf), "%d %lld\n", rc, monotonic_ms() - t0);
        if (write(rep[1], buf, (size_t)n) != n)
            _exit(3);
        lock_release(&l);
        _exit(rc == 0 ? 0 : 1);
    }
    close(err[1]);
    close(rep[1]);
    c.err = err[0];
    c.report = rep[0];
    return c;
}

static void child_result(struct rival *c, int *rc, long long *ms, char **err)
{
    struct sbuf rep = SBUF_INIT, e = SBUF_INIT;
    int st;

    cr_assert_eq(sbuf_read_fd(&rep, c->report, 0), 0);
    cr_assert_eq(sbuf_read_fd(&e, c->err, 0), 0);
    close(c->report);
    close(c->err);
    cr_assert_eq(waitpid(c->pid, &st, 0), c->pid);
    cr_assert_eq(sscanf(rep.buf, "%d %lld", rc, ms), 2, "report '%s'", rep.buf);
    *err = sbuf_detach(&e);
    sbuf_release(&rep);
}

Test(lock, second_process_waits_then_gets_it)
{
    struct lock held = LOCK_INIT;
    struct rival c;
    struct timespec ts = { 0, 700 * 1000000L };
    int rc;
    long long ms;
    char *err;

    cr_assert_eq(lock_take(&held, "vm-42", "VM 42", 0), 0);
    c = contender("vm-42", 10, held.fd);
    nanosleep(&ts, NULL);
    {
        int st;

        cr_assert_eq(waitpid(c.pid, &st, WNOHANG), 0, "the contender did not wait");
    }
    lock_release(&held);
    child_result(&c, &rc, &ms, &err);
    cr_assert_eq(rc, 0, "the contender failed: %s", err);
    cr_assert_geq(ms, 600, "got the lock after %lld ms while it was held for 700", ms);
    cr_assert_lt(ms, 2500, "took %lld ms to notice the release", ms);
    cr_assert_str_eq(err, "INFO: 42 clone: waiting for another action on VM 42 to finish\n",
                     "one INFO line in the VM's log while waiting");
    free(err);
}

Test(lock, second_process_times_out)
{
    struct lock held = LOCK_INIT;
    struct rival c;
    int rc;
    long long ms;
    char *err;

    cr_assert_eq(lock_take(&held, "vm-42", "VM 42", 0), 0);
    c = contender("vm-42", 1, held.fd);
    child_result(&c, &rc, &ms, &err);
    cr_assert_eq(rc, -1);
    cr_assert_geq(ms, 950);
    cr_assert_lt(ms, 1600);
    cr_assert(strstr(err, "waiting for another action on VM 42"), "%s", err);
    lock_release(&held);
    free(err);
}

Test(lock, a_killed_holder_frees_the_lock)
{
    int ready[2];
    pid_t pid;
    char b;
    struct lock l = LOCK_INIT;
    int st;

    cr_assert_eq(pipe(ready), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct lock mine = LOCK_INIT;

        close(ready[0]);
        if (lock_take(&mine, "vm-9", "VM 9", 0) < 0)
            _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(ready[1]);
    cr_assert_eq(read(ready[0], &b, 1), 1, "the holder did not take the lock");
    close(ready[0]);
    cr_assert_eq(lock_take(&l, "vm-9", "VM 9", 0), -1, "the lock is held");
    fail_reset();
    cr_assert_eq(kill(pid, SIGKILL), 0);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert_eq(lock_take(&l, "vm-9", "VM 9", 0), 0, "still locked after the holder died: %s",
                 fail_reason());
    lock_release(&l);
}

/* A lock file replaced by a symlink is not followed. */
Test(lock, symlinked_lock_file_is_refused)
{
    struct lock l = LOCK_INIT;
    char *d = test_tmpdir();
    char *outside = xasprintf("%s/outside", d);
    char *link = xasprintf("%s/vm-5.lock", lock_dir);

    cr_assert_eq(mkdir_p(lock_dir, 0755), 0);
    cr_assert_eq(symlink(outside, link), 0);
    cr_assert_eq(lock_take(&l, "vm-5", "VM 5", 0), -1);
    cr_assert(starts_with(fail_reason(), "cannot open lock file '"), "%s", fail_reason());
    cr_assert_eq(access(outside, F_OK), -1, "the symlink's target was created");
    cr_assert_eq(l.fd, -1);
    free(outside);
    free(link);
    free(d);
}

Test(lock, unusable_lock_dir)
{
    struct lock l = LOCK_INIT;
    char *d = xasprintf("%s", lock_dir);
    char *parent = xstrndup(d, strlen(d) - strlen("/locks"));

    cr_assert_eq(mkdir_p(parent, 0755), 0);
    test_write_file(d, "a file where the directory should be");
    cr_assert_eq(lock_take(&l, "vm-5", "VM 5", 0), -1);
    cr_assert_eq(l.fd, -1);
    cr_assert(strstr(fail_reason(), lock_dir), "%s", fail_reason());
    free(d);
    free(parent);
}

/* ---- locks named after image paths ---- */

Test(lock, path_locks_stay_inside_lock_dir)
{
    static const char *const paths[] = {
        "/var/lib/one//datastores/107/7884294dec91169f7f22cacffae86121",
        "/var/lib/one/datastores/1/../../../../etc/passwd",
        "../../../../tmp/escape",
        "/a b/'q'/\"dq\"/$(touch x)/`id`/;|&<>*?",
        "/tmp/new\nline/\x01\x7f/\xc3\xa9",
        "relative",
        "",
    };
    struct lock l[ARRAY_SIZE(paths)];
    struct strvec entries = STRVEC_INIT;
    char *d = test_tmpdir();

    cr_assert_eq(chdir(d), 0, "so that an escape would land in a fresh directory");
    for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
        l[i].fd = -1;
        fail_reset();
        cr_assert_eq(lock_take_path(&l[i], paths[i], 0), 0, "'%s': %s", paths[i], fail_reason());
    }
    lock_dir_entries(&entries);
    cr_assert_eq(entries.nr, ARRAY_SIZE(paths), "one lock file per path, nothing else");
    for (size_t i = 0; i < entries.nr; i++) {
        cr_assert(starts_with(entries.v[i], "path"), "'%s'", entries.v[i]);
        cr_assert(ends_with(entries.v[i], ".lock"), "'%s'", entries.v[i]);
        cr_assert_null(strchr(entries.v[i], '/'), "'%s' is a directory", entries.v[i]);
        cr_assert_leq(strlen(entries.v[i]), NAME_MAX);
    }
    {
        DIR *cwd = opendir(".");
        struct dirent *de;

        while ((de = readdir(cwd)))
            cr_assert(streq(de->d_name, ".") || streq(de->d_name, ".."),
                      "'%s' created outside LOCK_DIR", de->d_name);
        closedir(cwd);
    }
    for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
        lock_release(&l[i]);
    strvec_clear(&entries);
    free(d);
}

Test(lock, path_lock_name_is_readable)
{
    struct lock l = LOCK_INIT;
    struct strvec entries = STRVEC_INIT;

    cr_assert_eq(lock_take_path(&l, "/var/lib/one//datastores/107/abc/", 0), 0);
    lock_dir_entries(&entries);
    cr_assert_eq(entries.nr, 1);
    cr_assert_str_eq(entries.v[0], "path%var%lib%one%datastores%107%abc.lock");
    lock_release(&l);
    strvec_clear(&entries);
}

Test(lock, equivalent_paths_share_a_lock)
{
    struct lock a = LOCK_INIT, b = LOCK_INIT;

    cr_assert_eq(lock_take_path(&a, "/var/lib/one//datastores/107/x", 0), 0);
    cr_assert_eq(lock_take_path(&b, "/var/lib/one/datastores/107/x/", 0), -1,
                 "'//' and a trailing '/' name the same file");
    cr_assert(strstr(fail_reason(), "another action on /var/lib/one/datastores/107/x/ is still "
                                    "running"),
              "%s", fail_reason());
    fail_reset();
    cr_assert_eq(lock_take_path(&b, "/var/lib/one/datastores/107/y", 0), 0, "%s", fail_reason());
    lock_release(&a);
    lock_release(&b);
}

Test(lock, long_paths_fit_and_stay_distinct_by_their_tail)
{
    struct sbuf p1 = SBUF_INIT, p2 = SBUF_INIT;
    struct lock a = LOCK_INIT, b = LOCK_INIT, c = LOCK_INIT;
    struct strvec entries = STRVEC_INIT;

    for (int i = 0; i < 100; i++)
        sbuf_addf(&p1, "/component%02d", i);
    sbuf_add(&p2, p1.buf, p1.len);
    sbuf_adds(&p1, "/disk.0");
    sbuf_adds(&p2, "/disk.1");
    cr_assert_gt(p1.len, 1000);
    cr_assert_eq(lock_take_path(&a, p1.buf, 0), 0, "%s", fail_reason());
    cr_assert_eq(lock_take_path(&b, p2.buf, 0), 0, "different tails: %s", fail_reason());
    cr_assert_eq(lock_take_path(&c, p1.buf, 0), -1, "the same long path conflicts");
    lock_dir_entries(&entries);
    cr_assert_eq(entries.nr, 2);
    for (size_t i = 0; i < entries.nr; i++) {
        cr_assert_leq(strlen(entries.v[i]), NAME_MAX, "%zu bytes", strlen(entries.v[i]));
        cr_assert_null(strchr(entries.v[i], '/'));
    }
    lock_release(&a);
    lock_release(&b);
    strvec_clear(&entries);
    sbuf_release(&p1);
    sbuf_release(&p2);
}
