/* test_fsutil.c - directory creation, removal that never leaves the tree,
 * atomic publication and symlink replacement. */
#include "testlib.h"

#include <dirent.h>
#include <signal.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include "fsutil.h"

TestSuite(fsutil, .timeout = 60);

static char *tmp;

static char *at(const char *rel)
{
    if (!tmp)
        tmp = test_tmpdir();
    return xasprintf("%s/%s", tmp, rel);
}

static bool is_dir(const char *p)
{
    struct stat st;

    return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool exists(const char *p)
{
    struct stat st;

    return lstat(p, &st) == 0;
}

static char *content(const char *p)
{
    struct sbuf sb = SBUF_INIT;

    cr_assert_eq(sbuf_read_file(&sb, p, 0), 0, "%s: %s", p, strerror(errno));
    return sbuf_detach(&sb);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    cr_assert_not_null(d);
    while ((de = readdir(d)))
        if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

Test(fsutil, part_name)
{
    char *p = part_name("/var/lib/one/datastores/107/abc");

    cr_assert_str_eq(p, "/var/lib/one/datastores/107/abc.part");
    free(p);
    p = part_name("disk.0");
    cr_assert_str_eq(p, "disk.0.part");
    free(p);
}

/* ---- mkdir_p ---- */

Test(fsutil, mkdir_p_nested_and_existing)
{
    char *deep = at("a/b/c/d");
    char *a = at("a");

    cr_assert_eq(mkdir_p(deep, 0755), 0, "%s", fail_reason());
    cr_assert(is_dir(deep));
    cr_assert_eq(mkdir_p(deep, 0755), 0, "an existing directory is fine: %s", fail_reason());
    cr_assert_eq(mkdir_p(a, 0755), 0);
    cr_assert_eq(mkdir_p(tmp, 0755), 0);
    cr_assert_eq(mkdir_p("/", 0755), 0);
    cr_assert(!failed());
    free(deep);
    free(a);
}

Test(fsutil, mkdir_p_slashes)
{
    char *p = at("x//y///z/");
    char *z = at("x/y/z");

    cr_assert_eq(mkdir_p(p, 0755), 0, "%s", fail_reason());
    cr_assert(is_dir(z));
    free(p);
    free(z);
}

Test(fsutil, mkdir_p_mode)
{
    char *p = at("m/n");
    struct stat st;

    umask(022);
    cr_assert_eq(mkdir_p(p, 0700), 0);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0700);
    free(p);
}

Test(fsutil, mkdir_p_relative)
{
    char *in = at("");

    cr_assert_eq(chdir(in), 0);
    cr_assert_eq(mkdir_p("rel/a/b", 0755), 0, "%s", fail_reason());
    cr_assert(is_dir("rel/a/b"));
    cr_assert_eq(mkdir_p("single", 0755), 0, "%s", fail_reason());
    cr_assert(is_dir("single"));
    free(in);
}

Test(fsutil, mkdir_p_file_in_the_way)
{
    char *file = at("file");
    char *under = at("file/sub/dir");
    char *want = xasprintf("cannot create directory '%s/file/sub': Not a directory", tmp);

    test_write_file(file, "x");
    cr_assert_eq(mkdir_p(under, 0755), -1);
    cr_assert_str_eq(fail_reason(), want);
    free(want);

    fail_reset();
    want = xasprintf("'%s' exists and is not a directory", file);
    cr_assert_eq(mkdir_p(file, 0755), -1);
    cr_assert_str_eq(fail_reason(), want);
    free(want);
    free(file);
    free(under);
}

Test(fsutil, mkdir_p_through_a_symlink_to_a_directory)
{
    char *real = at("real");
    char *link = at("link");
    char *p = at("link/new");

    cr_assert_eq(mkdir(real, 0755), 0);
    cr_assert_eq(symlink(real, link), 0);
    cr_assert_eq(mkdir_p(p, 0755), 0, "%s", fail_reason());
    free(p);
    p = at("real/new");
    cr_assert(is_dir(p));
    free(p);
    free(real);
    free(link);
}

Test(fsutil, mkdir_p_dangling_symlink)
{
    char *link = at("dangling");
    char *want = xasprintf("cannot create directory '%s'", link);

    cr_assert_eq(symlink("/nonexistent/qcow2c", link), 0);
    cr_assert_eq(mkdir_p(link, 0755), -1);
    cr_assert(starts_with(fail_reason(), want), "%s", fail_reason());
    free(want);
    free(link);
}

Test(fsutil, mkdir_p_empty_path_is_refused)
{
    cr_assert_eq(mkdir_p("", 0755), -1);
    cr_assert_str_eq(fail_reason(), "cannot create a directory with an empty name");
}

/* ---- rm_rf ---- */

Test(fsutil, rm_rf_tree)
{
    char *root = at("tree");
    char *p;

    cr_assert_eq(mkdir_p(root, 0755), 0);
    p = at("tree/a/b/c");
    cr_assert_eq(mkdir_p(p, 0755), 0);
    free(p);
    p = at("tree/a/b/c/file");
    test_write_file(p, "data");
    free(p);
    p = at("tree/.hidden");
    test_write_file(p, "h");
    free(p);
    p = at("tree/a/empty");
    cr_assert_eq(mkdir(p, 0755), 0);
    free(p);
    p = at("tree/a/ro");
    cr_assert_eq(mkdir(p, 0755), 0);
    free(p);
    p = at("tree/a/ro/f");
    test_write_file(p, "f");
    cr_assert_eq(chmod(p, 0), 0);
    free(p);
    cr_assert_eq(rm_rf(root), 0, "%s", fail_reason());
    cr_assert(!exists(root));
    cr_assert(!failed());
    free(root);
}

Test(fsutil, rm_rf_does_not_follow_symlinks_out_of_the_tree)
{
    char *outside = at("outside");
    char *outfile = at("outside/precious");
    char *outtop = at("precious-top");
    char *root = at("tree");
    char *p;

    cr_assert_eq(mkdir(outside, 0755), 0);
    test_write_file(outfile, "keep me");
    test_write_file(outtop, "keep me too");
    p = at("tree/sub");
    cr_assert_eq(mkdir_p(p, 0755), 0);
    free(p);
    p = at("tree/sub/to-dir");
    cr_assert_eq(symlink(outside, p), 0);
    free(p);
    p = at("tree/to-file");
    cr_assert_eq(symlink(outtop, p), 0);
    free(p);
    p = at("tree/to-parent");
    cr_assert_eq(symlink("..", p), 0);
    free(p);
    p = at("tree/to-root");
    cr_assert_eq(symlink("/", p), 0);
    free(p);
    p = at("tree/dangling");
    cr_assert_eq(symlink("/nonexistent/qcow2c", p), 0);
    free(p);

    cr_assert_eq(rm_rf(root), 0, "%s", fail_reason());
    cr_assert(!exists(root));
    cr_assert(is_dir(outside));
    p = content(outfile);
    cr_assert_str_eq(p, "keep me");
    free(p);
    p = content(outtop);
    cr_assert_str_eq(p, "keep me too");
    free(p);
    free(outside);
    free(outfile);
    free(outtop);
    free(root);
}

/* rm_rf of a symlink to a directory removes the link only. */
Test(fsutil, rm_rf_of_a_symlink_removes_the_link)
{
    char *outside = at("outside");
    char *outfile = at("outside/precious");
    char *link = at("link");

    cr_assert_eq(mkdir(outside, 0755), 0);
    test_write_file(outfile, "keep");
    cr_assert_eq(symlink(outside, link), 0);
    cr_assert_eq(rm_rf(link), 0, "%s", fail_reason());
    cr_assert(!exists(link));
    cr_assert(exists(outfile));
    free(outside);
    free(outfile);
    free(link);
}

/* "link/" names the link's target for the kernel: rm_rf must still only
 * remove the link. */
Test(fsutil, rm_rf_of_a_symlink_with_a_trailing_slash)
{
    char *outside = at("outside");
    char *outfile = at("outside/precious");
    char *tree = at("tree");
    char *link = at("tree/link");
    static const char *const suffixes[] = { "/", "//" };

    cr_assert_eq(mkdir(outside, 0755), 0);
    cr_assert_eq(mkdir(tree, 0755), 0);
    test_write_file(outfile, "keep");
    for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
        char *arg = xasprintf("%s%s", link, suffixes[i]);

        cr_assert_eq(symlink(outside, link), 0);
        fail_reset();
        cr_assert_eq(rm_rf(arg), 0, "%s: %s", arg, fail_reason());
        cr_assert(exists(outfile), "rm_rf('%s') emptied the link's target", arg);
        cr_assert(!exists(link), "the link itself is removed");
        free(arg);
    }
    /* a directory with a trailing slash is removed as usual */
    {
        char *arg = xasprintf("%s/", tree);

        cr_assert_eq(rm_rf(arg), 0, "%s", fail_reason());
        cr_assert(!exists(tree));
        free(arg);
    }
    free(outside);
    free(outfile);
    free(tree);
    free(link);
}

Test(fsutil, rm_rf_missing_and_file)
{
    char *f = at("plain");

    cr_assert_eq(rm_rf("/nonexistent/qcow2c/x"), 0);
    cr_assert_eq(rm_rf(f), 0, "missing is success");
    test_write_file(f, "x");
    cr_assert_eq(rm_rf(f), 0);
    cr_assert(!exists(f));
    cr_assert(!failed());
    free(f);
}

Test(fsutil, rm_rf_deep_and_wide)
{
    struct sbuf p = SBUF_INIT;
    char *root = at("deep");

    sbuf_adds(&p, root);
    for (int i = 0; i < 60; i++)
        sbuf_addf(&p, "/level%d", i);
    cr_assert_eq(mkdir_p(p.buf, 0755), 0, "%s", fail_reason());
    for (int i = 0; i < 300; i++) {
        char *f = xasprintf("%s/file%d", root, i);

        test_write_file(f, "x");
        free(f);
    }
    cr_assert_eq(rm_rf(root), 0, "%s", fail_reason());
    cr_assert(!exists(root));
    sbuf_release(&p);
    free(root);
}

Test(fsutil, rm_rf_failure_names_the_path)
{
    char *root = at("locked");
    char *sub = at("locked/sub");
    char *f = at("locked/sub/f");

    if (geteuid() == 0)
        cr_skip_test("root ignores directory permissions");
    cr_assert_eq(mkdir_p(sub, 0755), 0);
    test_write_file(f, "x");
    cr_assert_eq(chmod(sub, 0555), 0);
    cr_assert_eq(rm_rf(root), -1);
    cr_assert(strstr(fail_reason(), "cannot remove '"), "%s", fail_reason());
    cr_assert(strstr(fail_reason(), "Permission denied"), "%s", fail_reason());
    chmod(sub, 0755);
    free(root);
    free(sub);
    free(f);
}

/* Works as root too: /proc refuses removal to everybody. */
Test(fsutil, rm_rf_failure_is_one_reason)
{
    cr_assert_eq(rm_rf("/proc/self/comm"), -1);
    cr_assert_str_eq(fail_reason(), "cannot remove '/proc/self/comm': Operation not permitted");
}

Test(fsutil, unlink_if_exists)
{
    char *f = at("f");
    char *d = at("d");

    cr_assert_eq(unlink_if_exists(f), 0);
    test_write_file(f, "x");
    cr_assert_eq(unlink_if_exists(f), 0);
    cr_assert(!exists(f));
    cr_assert(!failed());
    cr_assert_eq(mkdir(d, 0755), 0);
    cr_assert_eq(unlink_if_exists(d), -1, "a directory is not unlinked");
    cr_assert(starts_with(fail_reason(), "cannot remove '"), "%s", fail_reason());
    cr_assert(is_dir(d));
    free(f);
    free(d);
}

/* ---- publication ---- */

Test(fsutil, publish_makes_content_visible_under_the_final_name_only)
{
    char *dir = at("ds");
    char *final = at("ds/image");
    char *tmpname = part_name(final);
    char *c;

    cr_assert_eq(mkdir(dir, 0755), 0);
    test_write_file(tmpname, "complete image");
    cr_assert(!exists(final));
    cr_assert_eq(publish(tmpname, final), 0, "%s", fail_reason());
    cr_assert(!exists(tmpname), "the temporary name is gone");
    c = content(final);
    cr_assert_str_eq(c, "complete image");
    free(c);
    cr_assert_eq(count_entries(dir), 1, "nothing else is left in the directory");
    free(dir);
    free(final);
    free(tmpname);
}

Test(fsutil, publish_replaces_an_existing_file)
{
    char *final = at("image");
    char *tmpname = part_name(final);
    char *c;
    struct stat before, after;

    test_write_file(final, "old");
    cr_assert_eq(stat(final, &before), 0);
    test_write_file(tmpname, "new");
    cr_assert_eq(publish(tmpname, final), 0, "%s", fail_reason());
    c = content(final);
    cr_assert_str_eq(c, "new");
    cr_assert_eq(stat(final, &after), 0);
    cr_assert_neq(before.st_ino, after.st_ino, "renamed over, not rewritten in place");
    free(c);
    free(final);
    free(tmpname);
}

Test(fsutil, publish_failures)
{
    char *final = at("image");
    char *tmpname = part_name(final);
    char *want;

    cr_assert_eq(publish(tmpname, final), -1, "no temporary file");
    want = xasprintf("cannot open '%s': No such file or directory", tmpname);
    cr_assert_str_eq(fail_reason(), want);
    free(want);
    cr_assert(!exists(final));

    fail_reset();
    free(final);
    final = at("no/such/dir/image");
    test_write_file(tmpname, "x");
    cr_assert_eq(publish(tmpname, final), -1);
    cr_assert(starts_with(fail_reason(), "cannot rename '"), "%s", fail_reason());
    cr_assert(exists(tmpname), "the data is not lost");
    free(final);
    free(tmpname);
}

Test(fsutil, fsync_helpers)
{
    char *f = at("f");

    test_write_file(f, "x");
    cr_assert_eq(fsync_path(f), 0, "%s", fail_reason());
    cr_assert_eq(fsync_dir_of(f), 0, "%s", fail_reason());
    cr_assert_eq(fsync_path(tmp), 0, "a directory can be flushed: %s", fail_reason());
    cr_assert_eq(fsync_path("/nonexistent/qcow2c"), -1);
    cr_assert_str_eq(fail_reason(), "cannot open '/nonexistent/qcow2c': No such file or directory");
    free(f);
}

/* ---- free space ---- */

Test(fsutil, fs_free_bytes)
{
    uint64_t free_bytes = 0;
    struct statvfs sv;

    if (!tmp)
        tmp = test_tmpdir();
    cr_assert_eq(fs_free_bytes(tmp, &free_bytes), 0, "%s", fail_reason());
    cr_assert_eq(statvfs(tmp, &sv), 0);
    cr_assert_gt(free_bytes, 0);
    cr_assert_leq(free_bytes, (uint64_t)sv.f_blocks * sv.f_frsize);

    free_bytes = 42;
    cr_assert_eq(fs_free_bytes("/nonexistent/qcow2c", &free_bytes), -1);
    cr_assert_eq(free_bytes, 42, "untouched on failure");
    cr_assert_str_eq(fail_reason(),
                     "cannot read the free space of '/nonexistent/qcow2c': No such file or "
                     "directory");
}

/* ---- symlinks ---- */

static char *link_target(const char *p)
{
    char buf[PATH_MAX];
    ssize_t n = readlink(p, buf, sizeof(buf) - 1);

    cr_assert_gt(n, 0, "%s: %s", p, strerror(errno));
    buf[n] = '\0';
    return xstrdup(buf);
}

Test(fsutil, symlink_replace_creates_and_replaces)
{
    char *link = at("disk.0");
    char *lnk = xasprintf("%s.lnk", link);
    char *t;

    cr_assert_eq(symlink_replace("/var/lib/one/datastores/1/a", link), 0, "%s", fail_reason());
    t = link_target(link);
    cr_assert_str_eq(t, "/var/lib/one/datastores/1/a");
    free(t);
    cr_assert_eq(symlink_replace("relative/b", link), 0, "%s", fail_reason());
    t = link_target(link);
    cr_assert_str_eq(t, "relative/b");
    free(t);
    cr_assert(!exists(lnk), "no temporary link left");
    cr_assert_eq(count_entries(tmp), 1);
    free(link);
    free(lnk);
}

Test(fsutil, symlink_replace_cleans_a_leftover_temporary)
{
    char *link = at("disk.1");
    char *lnk = xasprintf("%s.lnk.%ld", link, (long)getpid());
    char *other = xasprintf("%s.lnk.%ld", link, (long)getpid() + 1);
    char *t;

    /* Our own leftover is replaced; another process's temporary, possibly
     * mid-rename in a concurrent action, is not touched. */
    cr_assert_eq(symlink("stale", lnk), 0);
    cr_assert_eq(symlink("theirs", other), 0);
    cr_assert_eq(symlink_replace("fresh", link), 0, "%s", fail_reason());
    t = link_target(link);
    cr_assert_str_eq(t, "fresh");
    free(t);
    cr_assert(!exists(lnk));
    t = link_target(other);
    cr_assert_str_eq(t, "theirs");
    free(t);
    free(link);
    free(lnk);
    free(other);
}

Test(fsutil, symlink_replace_over_a_file)
{
    char *link = at("disk.2");
    char *t;

    test_write_file(link, "regular file");
    cr_assert_eq(symlink_replace("target", link), 0, "%s", fail_reason());
    t = link_target(link);
    cr_assert_str_eq(t, "target");
    free(t);
    free(link);
}

Test(fsutil, symlink_replace_into_a_missing_directory)
{
    char *link = at("no/such/dir/disk.0");

    cr_assert_eq(symlink_replace("t", link), -1);
    cr_assert(starts_with(fail_reason(), "cannot create symlink '"), "%s", fail_reason());
    free(link);
}

/* A reader never sees the link missing while it is being replaced. */
Test(fsutil, symlink_replace_is_atomic)
{
    char *link = at("disk.3");
    pid_t pid;
    int st = 0;

    cr_assert_eq(symlink_replace("t0", link), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char buf[64];

        for (int i = 0; i < 100000; i++) {
            ssize_t n = readlink(link, buf, sizeof(buf));

            if (n < 2 || buf[0] != 't')
                _exit(1);
        }
        _exit(0);
    }
    for (int i = 0;; i++) {
        char t[16];

        snprintf(t, sizeof(t), "t%d", i % 1000);
        cr_assert_eq(symlink_replace(t, link), 0, "%s", fail_reason());
        if (waitpid(pid, &st, WNOHANG) == pid)
            break;
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the reader saw the link missing");
    free(link);
}
