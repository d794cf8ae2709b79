/* test_copy.c - the file copy engine: content, holes, preallocation. */
#include "testlib.h"

#include "copy.h"
#include "run.h"
#include "sbuf.h"

static char *dir;

static void setup(void)
{
    test_config(NULL);
    dir = test_tmpdir();
}

static void teardown(void)
{
    free(dir);
}

TestSuite(copy, .init = setup, .fini = teardown, .timeout = 60);

/* 64 MiB file: data at 0, 10 MiB and the last MiB; holes elsewhere. */
static char *make_sparse(void)
{
    char *p = xasprintf("%s/src", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char block[1 << 16];

    cr_assert(fd >= 0);
    for (size_t i = 0; i < sizeof(block); i++)
        block[i] = (char)(i * 7 + 1);
    cr_assert_eq(pwrite(fd, block, sizeof(block), 0), (ssize_t)sizeof(block));
    cr_assert_eq(pwrite(fd, block, sizeof(block), 10 << 20), (ssize_t)sizeof(block));
    cr_assert_eq(pwrite(fd, block, sizeof(block), (63 << 20)), (ssize_t)sizeof(block));
    cr_assert_eq(ftruncate(fd, 64 << 20), 0);
    close(fd);
    return p;
}

static void assert_same(const char *a, const char *b)
{
    struct sbuf x = SBUF_INIT, y = SBUF_INIT;

    cr_assert_eq(sbuf_read_file(&x, a, 0), 0);
    cr_assert_eq(sbuf_read_file(&y, b, 0), 0);
    cr_assert_eq(x.len, y.len);
    cr_assert(memcmp(x.buf, y.buf, x.len) == 0, "content differs");
    sbuf_release(&x);
    sbuf_release(&y);
}

Test(copy, sparse_copy_keeps_content_and_holes)
{
    char *src = make_sparse();
    char *dst = xasprintf("%s/dst", dir);
    struct copy_result r;
    struct stat st;

    cr_assert_eq(copy_file(src, dst, true, &r), 0, "%s", fail_reason());
    assert_same(src, dst);
    cr_assert_eq(stat(dst, &st), 0);
    cr_assert_eq(st.st_size, 64 << 20);
    cr_assert_lt(st.st_blocks * 512, 8 << 20, "holes were filled: %lld bytes allocated",
                 (long long)st.st_blocks * 512);
    cr_assert(r.data_bytes <= (4u << 20) || streq(r.method, "reflink"), "%s copied %llu",
              r.method, (unsigned long long)r.data_bytes);
    free(src);
    free(dst);
}

Test(copy, preallocated_copy_allocates_everything)
{
    char *src = make_sparse();
    char *dst = xasprintf("%s/full", dir);
    struct copy_result r;
    struct stat st;

    cr_assert_eq(copy_file(src, dst, false, &r), 0, "%s", fail_reason());
    assert_same(src, dst);
    cr_assert_eq(stat(dst, &st), 0);
    cr_assert_geq(st.st_blocks * 512, 64 << 20);
    free(src);
    free(dst);
}

Test(copy, existing_destination_is_refused_and_kept)
{
    char *src = make_sparse();
    char *dst = xasprintf("%s/exists", dir);
    struct copy_result r;
    struct sbuf got = SBUF_INIT;

    test_write_file(dst, "precious");
    cr_assert_eq(copy_file(src, dst, true, &r), -1);
    cr_assert_eq(sbuf_read_file(&got, dst, 0), 0);
    cr_assert_str_eq(got.buf, "precious");
    sbuf_release(&got);
    free(src);
    free(dst);
}

Test(copy, missing_source_is_a_reason)
{
    char *dst = xasprintf("%s/never", dir);
    struct copy_result r;

    cr_assert_eq(copy_file("/nonexistent/src", dst, true, &r), -1);
    cr_assert(strstr(fail_reason(), "cannot open '/nonexistent/src'"), "%s", fail_reason());
    cr_assert(access(dst, F_OK) < 0);
    free(dst);
}

Test(copy, empty_file)
{
    char *src = xasprintf("%s/empty", dir);
    char *dst = xasprintf("%s/empty.copy", dir);
    struct copy_result r;
    struct stat st;

    test_write_file(src, "");
    cr_assert_eq(copy_file(src, dst, true, &r), 0, "%s", fail_reason());
    cr_assert_eq(stat(dst, &st), 0);
    cr_assert_eq(st.st_size, 0);
    free(src);
    free(dst);
}

Test(copy, full_file_system_fails_and_leaves_nothing)
{
    /* /dev/full-like behaviour needs a small file system; a tmpfs of 1 MiB
     * is only available as root, which CI is. */
    char *mnt = xasprintf("%s/small", dir);
    char *src = xasprintf("%s/big", dir);
    char *dst = xasprintf("%s/dst", mnt);
    struct copy_result r;
    struct cmd c = CMD_INIT;

    cr_assert_eq(mkdir(mnt, 0755), 0);
    strvec_pushl(&c.args, "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt, NULL);
    cr_assert_eq(cmd_run(&c), 0, "needs root to mount a small tmpfs: %s", fail_reason());
    cmd_release(&c);
    strvec_pushl(&c.args, "dd", "if=/dev/urandom", "bs=1M", "count=4", NULL);
    c.out_fd = open(src, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    close(c.out_fd);
    cmd_release(&c);
    cr_assert_eq(copy_file(src, dst, true, &r), -1);
    cr_assert(strstr(fail_reason(), "No space left on device"), "%s", fail_reason());
    cr_assert(access(dst, F_OK) < 0, "a partial copy was left behind");
    strvec_pushl(&c.args, "umount", mnt, NULL);
    cmd_run(&c);
    cmd_release(&c);
    free(mnt);
    free(src);
    free(dst);
}
