/* test_sbuf.c - growable buffers: the invariants of sbuf.h after every
 * operation, and reading descriptors with a limit. */
#include "testlib.h"

#include <criterion/redirect.h>
#include <sys/wait.h>

TestSuite(sbuf, .timeout = 30);

/* buf never NULL, buf[len] == '\0', len < alloc once allocated. */
static void check_invariants(const struct sbuf *sb)
{
    cr_assert_not_null(sb->buf);
    cr_assert_eq(sb->buf[sb->len], '\0', "buf[len] is not NUL (len %zu)", sb->len);
    if (sb->alloc)
        cr_assert_lt(sb->len, sb->alloc);
    else
        cr_assert_eq(sb->len, 0);
}

Test(sbuf, init_needs_no_allocation)
{
    struct sbuf a = SBUF_INIT, b;

    check_invariants(&a);
    cr_assert_eq(a.alloc, 0);
    cr_assert_str_eq(a.buf, "");
    sbuf_init(&b);
    check_invariants(&b);
    cr_assert_eq(b.alloc, 0);
    sbuf_release(&a); /* releasing an untouched buffer is fine */
    check_invariants(&a);
    sbuf_reset(&b);
    check_invariants(&b);
    sbuf_rtrim(&b);
    sbuf_remove_head(&b, 3);
    check_invariants(&b);
    /* the shared empty string was not written to */
    cr_assert_eq(sbuf_slop[0], '\0');
}

Test(sbuf, detach_of_an_empty_buffer_is_an_owned_empty_string)
{
    struct sbuf sb = SBUF_INIT;
    char *s = sbuf_detach(&sb);

    cr_assert_str_eq(s, "");
    cr_assert_neq(s, sbuf_slop);
    free(s);
    check_invariants(&sb);
}

Test(sbuf, detach_hands_over_and_resets)
{
    struct sbuf sb = SBUF_INIT;
    char *s;

    sbuf_adds(&sb, "hello");
    s = sbuf_detach(&sb);
    cr_assert_str_eq(s, "hello");
    cr_assert_eq(sb.len, 0);
    cr_assert_eq(sb.alloc, 0);
    check_invariants(&sb);
    sbuf_adds(&sb, "again");
    cr_assert_str_eq(sb.buf, "again");
    cr_assert_str_eq(s, "hello", "the detached string is independent");
    free(s);
    sbuf_release(&sb);
}

Test(sbuf, add_keeps_nul_bytes)
{
    struct sbuf sb = SBUF_INIT;
    static const char data[] = { 'a', '\0', 'b', '\0' };

    sbuf_add(&sb, data, sizeof(data));
    cr_assert_eq(sb.len, 4);
    cr_assert_eq(memcmp(sb.buf, data, 4), 0);
    check_invariants(&sb);
    sbuf_add(&sb, "", 0);
    cr_assert_eq(sb.len, 4);
    sbuf_addch(&sb, 0);
    cr_assert_eq(sb.len, 5);
    check_invariants(&sb);
    sbuf_release(&sb);
}

Test(sbuf, adds_and_addch)
{
    struct sbuf sb = SBUF_INIT;

    sbuf_adds(&sb, "");
    check_invariants(&sb);
    sbuf_adds(&sb, "ab");
    sbuf_addch(&sb, 'c');
    sbuf_addch(&sb, 0xe9); /* int argument: one byte */
    cr_assert_eq(sb.len, 4);
    cr_assert_eq((unsigned char)sb.buf[3], 0xe9);
    check_invariants(&sb);
    sbuf_release(&sb);
}

Test(sbuf, addf_grows_across_many_appends)
{
    struct sbuf sb = SBUF_INIT;
    char *want = xstrdup("");

    for (int i = 0; i < 5000; i++) {
        char *next = xasprintf("%s%d,", want, i);

        free(want);
        want = next;
        sbuf_addf(&sb, "%d,", i);
        check_invariants(&sb);
    }
    cr_assert_eq(sb.len, strlen(want));
    cr_assert_str_eq(sb.buf, want);
    free(want);
    sbuf_release(&sb);
}

Test(sbuf, addf_one_big_piece)
{
    struct sbuf sb = SBUF_INIT;
    char *big = xmalloc(300001);

    memset(big, 'x', 300000);
    big[300000] = '\0';
    sbuf_adds(&sb, "<");
    sbuf_addf(&sb, "%s>%05d", big, 42);
    cr_assert_eq(sb.len, 1 + 300000 + 1 + 5);
    cr_assert_eq(sb.buf[0], '<');
    cr_assert_str_eq(sb.buf + 300001, ">00042");
    check_invariants(&sb);
    free(big);
    sbuf_release(&sb);
}

Test(sbuf, addf_empty_result)
{
    struct sbuf sb = SBUF_INIT;

    sbuf_addf(&sb, "%s", "");
    check_invariants(&sb);
    cr_assert_eq(sb.len, 0);
    sbuf_release(&sb);
}

Test(sbuf, grow_reserves_without_changing_content)
{
    struct sbuf sb = SBUF_INIT;

    sbuf_adds(&sb, "abc");
    sbuf_grow(&sb, 1000);
    cr_assert_geq(sb.alloc, 3 + 1000 + 1);
    cr_assert_str_eq(sb.buf, "abc");
    cr_assert_eq(sb.len, 3);
    check_invariants(&sb);
    sbuf_release(&sb);

    sbuf_grow(&sb, 0);
    check_invariants(&sb);
    cr_assert_str_eq(sb.buf, "");
    sbuf_release(&sb);
}

Test(sbuf, setlen_and_reset)
{
    struct sbuf sb = SBUF_INIT;

    sbuf_adds(&sb, "abcdef");
    sbuf_setlen(&sb, 3);
    cr_assert_str_eq(sb.buf, "abc");
    check_invariants(&sb);
    sbuf_reset(&sb);
    cr_assert_str_eq(sb.buf, "");
    cr_assert_gt(sb.alloc, 0, "reset keeps the storage");
    check_invariants(&sb);
    sbuf_release(&sb);
}

Test(sbuf, setlen_beyond_the_allocation_dies, .exit_code = 1)
{
    struct sbuf sb = SBUF_INIT;

    cr_redirect_stderr();
    sbuf_adds(&sb, "abc");
    sbuf_setlen(&sb, sb.alloc + 10);
}

Test(sbuf, setlen_of_an_empty_buffer_dies, .exit_code = 1)
{
    struct sbuf sb = SBUF_INIT;

    cr_redirect_stderr();
    sbuf_setlen(&sb, 1);
}

Test(sbuf, rtrim)
{
    static const char *const t[][2] = {
        { "abc", "abc" },       { "abc \t\r\n", "abc" }, { "a b \n", "a b" },
        { "  lead", "  lead" }, { " \t\r\n ", "" },      { "", "" },
        { "x\v", "x\v" }, /* only space, tab, CR and LF */
        { "x\n\n\n", "x" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
        struct sbuf sb = SBUF_INIT;

        sbuf_adds(&sb, t[i][0]);
        sbuf_rtrim(&sb);
        cr_assert_str_eq(sb.buf, t[i][1], "rtrim('%s')", t[i][0]);
        cr_assert_eq(sb.len, strlen(t[i][1]));
        check_invariants(&sb);
        sbuf_release(&sb);
    }
}

Test(sbuf, rtrim_stops_at_binary_data)
{
    struct sbuf sb = SBUF_INIT;

    sbuf_add(&sb, "a\0 \n", 4);
    sbuf_rtrim(&sb);
    cr_assert_eq(sb.len, 2);
    cr_assert_eq(sb.buf[1], '\0');
    check_invariants(&sb);
    sbuf_release(&sb);
}

Test(sbuf, remove_head)
{
    static const struct {
        const char *in;
        size_t n;
        const char *out;
    } t[] = {
        { "abcdef", 0, "abcdef" },
        { "abcdef", 1, "bcdef" },
        { "abcdef", 5, "f" },
        { "abcdef", 6, "" },
        { "abcdef", 7, "" },
        { "abcdef", SIZE_MAX, "" },
        { "", 0, "" },
        { "", 3, "" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
        struct sbuf sb = SBUF_INIT;

        sbuf_adds(&sb, t[i].in);
        sbuf_remove_head(&sb, t[i].n);
        cr_assert_str_eq(sb.buf, t[i].out, "remove_head('%s', %zu)", t[i].in, t[i].n);
        cr_assert_eq(sb.len, strlen(t[i].out));
        check_invariants(&sb);
        sbuf_release(&sb);
    }
}

/* The way run.c keeps the tail of a long stderr. */
Test(sbuf, remove_head_keeps_a_tail_of_binary_data)
{
    struct sbuf sb = SBUF_INIT;

    for (int i = 0; i < 1000; i++)
        sbuf_addch(&sb, i % 256);
    sbuf_remove_head(&sb, 1000 - 10);
    cr_assert_eq(sb.len, 10);
    for (int i = 0; i < 10; i++)
        cr_assert_eq((unsigned char)sb.buf[i], (990 + i) % 256);
    check_invariants(&sb);
    sbuf_release(&sb);
}

Test(sbuf, add_oneline)
{
    struct sbuf sb = SBUF_INIT;
    static const char in[] = "a\nb\r\tc\x1b[0m\x7f\x01\0z\xc3\xa9~";

    sbuf_adds(&sb, ">");
    sbuf_add_oneline(&sb, in, sizeof(in) - 1);
    cr_assert_eq(sb.len, 1 + sizeof(in) - 1, "one byte out per byte in");
    cr_assert_str_eq(sb.buf, ">a b  c [0m   z\xc3\xa9~");
    check_invariants(&sb);
    for (size_t i = 0; i < sb.len; i++) {
        unsigned char c = (unsigned char)sb.buf[i];

        cr_assert(c >= 0x20 && c != 0x7f, "control byte 0x%02x at %zu", c, i);
    }
    sbuf_release(&sb);
}

Test(sbuf, add_oneline_respects_len_and_empty)
{
    struct sbuf sb = SBUF_INIT;

    sbuf_add_oneline(&sb, "abc\ndef", 4);
    cr_assert_str_eq(sb.buf, "abc ");
    sbuf_add_oneline(&sb, "zzz", 0);
    cr_assert_str_eq(sb.buf, "abc ");
    check_invariants(&sb);
    sbuf_release(&sb);

    sbuf_add_oneline(&sb, "", 0);
    check_invariants(&sb);
    cr_assert_str_eq(sb.buf, "");
    sbuf_release(&sb);
}

/* ---- reading descriptors ---- */

static char *tmpfile_with(const char *dir, const char *name, size_t size, char fill)
{
    char *path = xasprintf("%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char *data = xmalloc(size ? size : 1);

    cr_assert_geq(fd, 0);
    memset(data, fill, size);
    cr_assert_eq(write(fd, data, size), (ssize_t)size);
    close(fd);
    free(data);
    return path;
}

Test(sbuf, read_fd_from_a_pipe_in_pieces)
{
    struct sbuf sb = SBUF_INIT;
    int fds[2];
    pid_t pid;

    cr_assert_eq(pipe(fds), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char chunk[777];

        close(fds[0]);
        for (int i = 0; i < 1000; i++) {
            memset(chunk, 'a' + i % 26, sizeof(chunk));
            if (write(fds[1], chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk))
                _exit(1);
        }
        _exit(0);
    }
    close(fds[1]);
    sbuf_adds(&sb, "head:");
    cr_assert_eq(sbuf_read_fd(&sb, fds[0], 0), 0, "%s", strerror(errno));
    close(fds[0]);
    waitpid(pid, NULL, 0);
    cr_assert_eq(sb.len, 5 + 777 * 1000);
    cr_assert(starts_with(sb.buf, "head:aaa"));
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(sb.buf[5 + (size_t)i * 777 + 776], 'a' + i % 26);
    check_invariants(&sb);
    sbuf_release(&sb);
}

Test(sbuf, read_file_whole_and_empty)
{
    char *dir = test_tmpdir();
    char *big = tmpfile_with(dir, "big", 200000, 'q');
    char *empty = tmpfile_with(dir, "empty", 0, 'q');
    struct sbuf sb = SBUF_INIT;

    cr_assert_eq(sbuf_read_file(&sb, big, 0), 0);
    cr_assert_eq(sb.len, 200000);
    check_invariants(&sb);
    sbuf_release(&sb);
    cr_assert_eq(sbuf_read_file(&sb, empty, 0), 0);
    cr_assert_eq(sb.len, 0);
    check_invariants(&sb);
    sbuf_release(&sb);
    free(big);
    free(empty);
    free(dir);
}

Test(sbuf, read_file_missing_sets_errno)
{
    struct sbuf sb = SBUF_INIT;

    errno = 0;
    cr_assert_eq(sbuf_read_file(&sb, "/nonexistent/qcow2c/x", 0), -1);
    cr_assert_eq(errno, ENOENT);
    check_invariants(&sb);
    cr_assert(!failed(), "sbuf reports through errno only");
}

Test(sbuf, read_fd_bad_descriptor)
{
    struct sbuf sb = SBUF_INIT;

    errno = 0;
    cr_assert_eq(sbuf_read_fd(&sb, -1, 0), -1);
    cr_assert_eq(errno, EBADF);
    check_invariants(&sb);
    sbuf_release(&sb);
}

/* "up to max bytes in total": a larger input is E2BIG, and the buffer never
 * holds more than the limit. */
Test(sbuf, read_limit_is_e2big_and_bounded)
{
    char *dir = test_tmpdir();
    char *f100 = tmpfile_with(dir, "f100", 100, 'x');
    char *fbig = tmpfile_with(dir, "fbig", 300000, 'y');
    struct sbuf sb = SBUF_INIT;

    errno = 0;
    cr_assert_eq(sbuf_read_file(&sb, f100, 10), -1);
    cr_assert_eq(errno, E2BIG);
    cr_assert_leq(sb.len, 10, "read %zu bytes with a limit of 10", sb.len);
    check_invariants(&sb);
    sbuf_release(&sb);

    errno = 0;
    cr_assert_eq(sbuf_read_file(&sb, fbig, 70000), -1);
    cr_assert_eq(errno, E2BIG);
    cr_assert_leq(sb.len, 70000, "read %zu bytes with a limit of 70000", sb.len);
    check_invariants(&sb);
    sbuf_release(&sb);

    errno = 0;
    cr_assert_eq(sbuf_read_file(&sb, f100, 99), -1);
    cr_assert_eq(errno, E2BIG);
    sbuf_release(&sb);
    free(f100);
    free(fbig);
    free(dir);
}

Test(sbuf, read_limit_allows_exactly_max)
{
    char *dir = test_tmpdir();
    char *f100 = tmpfile_with(dir, "f100", 100, 'x');
    struct sbuf sb = SBUF_INIT;

    cr_assert_eq(sbuf_read_file(&sb, f100, 100), 0, "%s", strerror(errno));
    cr_assert_eq(sb.len, 100);
    sbuf_release(&sb);
    cr_assert_eq(sbuf_read_file(&sb, f100, 101), 0, "%s", strerror(errno));
    cr_assert_eq(sb.len, 100);
    check_invariants(&sb);
    sbuf_release(&sb);
    cr_assert_eq(sbuf_read_file(&sb, f100, SIZE_MAX), 0, "%s", strerror(errno));
    cr_assert_eq(sb.len, 100, "a huge limit is no limit");
    sbuf_release(&sb);
    cr_assert_eq(sbuf_read_file(&sb, f100, 1), -1);
    cr_assert_eq(errno, E2BIG);
    cr_assert_eq(sb.len, 1);
    sbuf_release(&sb);
    free(f100);
    free(dir);
}

/* The limit counts what the buffer already held ("in total"). */
Test(sbuf, read_limit_counts_existing_content)
{
    char *dir = test_tmpdir();
    char *f100 = tmpfile_with(dir, "f100", 100, 'x');
    struct sbuf sb = SBUF_INIT;

    sbuf_adds(&sb, "0123456789");
    errno = 0;
    cr_assert_eq(sbuf_read_file(&sb, f100, 100), -1);
    cr_assert_eq(errno, E2BIG);
    sbuf_release(&sb);
    sbuf_adds(&sb, "0123456789");
    cr_assert_eq(sbuf_read_file(&sb, f100, 110), 0);
    cr_assert_eq(sb.len, 110);
    sbuf_release(&sb);
    free(f100);
    free(dir);
}
