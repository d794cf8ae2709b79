/* test_stream.c - the sink plumbing, the file/null/head sinks, fd_pump and
 * is_http_url. */
#include "testlib.h"

#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "stream.h"

TestSuite(stream, .timeout = 60);

#define KIB 1024u
#define MIB (1024u * 1024u)

/* ---- helpers ---- */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static void fill_random(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        p[i] = (unsigned char)(rng_state >> 32);
    }
}

/* Counts calls; fails every write once `fail` is set. */
struct probe {
    struct sink s;
    unsigned writes;
    bool fail;
};

static int probe_write(struct sink *s, const void *buf UNUSED, size_t len UNUSED)
{
    struct probe *p = (struct probe *)s;

    p->writes++;
    return p->fail ? fail("probe refuses") : 0;
}

static int probe_close(struct sink *s UNUSED)
{
    return 0;
}

static void probe_free(struct sink *s)
{
    free(s);
}

static struct probe *probe_new(void)
{
    struct probe *p = xcalloc(1, sizeof(*p));

    p->s.write = probe_write;
    p->s.close = probe_close;
    p->s.free = probe_free;
    return p;
}

static char *tmp_path(const char *name)
{
    char *dir = test_tmpdir();
    char *path = xasprintf("%s/%s", dir, name);

    free(dir);
    return path;
}

/* Removes a file of tmp_path() and its directory: a test that passed
 * leaves nothing behind (one that failed stops before, leaving evidence). */
static void remove_tmp(char *path)
{
    char *slash = strrchr(path, '/');

    cr_assert_eq(unlink(path), 0, "%s: %s", path, strerror(errno));
    *slash = '\0';
    rmdir(path);
    free(path);
}

static int create(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    return fd;
}

/* Writes `len` bytes of `data` in pieces of the sizes in `steps` (cycled),
 * then closes. */
static void write_in_steps(struct sink *s, const unsigned char *data, size_t len,
                           const size_t *steps, size_t nsteps)
{
    size_t off = 0;

    for (size_t i = 0; off < len; i++) {
        size_t n = steps[i % nsteps];

        if (n > len - off)
            n = len - off;
        cr_assert_eq(sink_write(s, data + off, n), 0, "%s", fail_reason());
        off += n;
    }
    cr_assert_eq(sink_close(s), 0, "%s", fail_reason());
}

static void check_content(const char *path, const unsigned char *data, size_t len)
{
    struct sbuf got = SBUF_INIT;

    cr_assert_eq(sbuf_read_file(&got, path, 0), 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(got.len, len, "%s: %zu bytes, %zu expected", path, got.len, len);
    cr_assert(memcmp(got.buf, data, len) == 0, "%s: content differs", path);
    sbuf_release(&got);
}

static uint64_t allocated(const char *path)
{
    struct stat st;

    cr_assert_eq(stat(path, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

/* 8 MiB: data, a 2 MiB hole, scattered 4 KiB data blocks among holes,
 * a zero run that is not block-aligned, and data again. */
static unsigned char *holey_image(size_t len, size_t *data_bytes)
{
    unsigned char *p = xcalloc(1, len);
    size_t data = 0;

    fill_random(p, MIB);
    data += MIB;
    for (size_t off = 3 * MIB; off < 5 * MIB; off += 64 * KIB) {
        fill_random(p + off, 4 * KIB);
        data += 4 * KIB;
    }
    fill_random(p + 5 * MIB, MIB + 100); /* ends 100 bytes into a block */
    fill_random(p + 6 * MIB + 3000, 10);  /* a block with a few bytes */
    data += MIB + 8 * KIB;
    fill_random(p + 7 * MIB, len - 7 * MIB);
    data += len - 7 * MIB;
    *data_bytes = data;
    return p;
}

/* ---- sink plumbing ---- */

Test(stream, sink_write_counts_accepted_bytes_only)
{
    struct probe *p = probe_new();

    cr_assert_eq(sink_write(&p->s, "abc", 3), 0);
    cr_assert_eq(sink_write(&p->s, "", 0), 0);
    cr_assert_eq(p->writes, 1, "an empty write does not reach the sink");
    cr_assert_eq(p->s.bytes, 3);
    p->fail = true;
    cr_assert_eq(sink_write(&p->s, "defg", 4), -1);
    cr_assert_eq(p->s.bytes, 3, "a refused write is not counted");
    cr_assert_str_eq(fail_reason(), "probe refuses");
    sink_free(&p->s);
    sink_free(NULL);
}

Test(stream, null_sink_counts)
{
    struct sink *s = null_sink_new();

    cr_assert_eq(sink_write(s, "12345", 5), 0);
    cr_assert_eq(sink_write(s, "678", 3), 0);
    cr_assert_eq(sink_close(s), 0);
    cr_assert_eq(s->bytes, 8);
    sink_free(s);
}

Test(stream, head_sink_keeps_the_first_bytes)
{
    struct sink *s = head_sink_new(10);
    const char *data;
    size_t len = 99;

    head_sink_data(s, &len);
    cr_assert_eq(len, 0);
    cr_assert_eq(sink_write(s, "0123", 4), 0);
    cr_assert_eq(sink_write(s, "456789abc", 9), 0);
    cr_assert_eq(sink_write(s, "def", 3), 0);
    cr_assert_eq(sink_close(s), 0);
    data = head_sink_data(s, &len);
    cr_assert_eq(len, 10);
    cr_assert(memcmp(data, "0123456789", 10) == 0);
    cr_assert_eq(s->bytes, 16, "the rest is discarded, but counted");
    sink_free(s);

    s = head_sink_new(0);
    cr_assert_eq(sink_write(s, "x", 1), 0);
    head_sink_data(s, &len);
    cr_assert_eq(len, 0);
    sink_free(s);
}

/* ---- file sink ---- */

static const size_t odd_steps[] = { 1, 4095, 4097, 100000, 3 * MIB, 12345, 7, 65536 };

Test(stream, file_sink_writes_everything_in_order)
{
    char *path = tmp_path("plain");
    int fd = create(path);
    size_t len = 5 * MIB + 333;
    unsigned char *data = xmalloc(len);
    struct sink *s = file_sink_new(fd, path, false);

    fill_random(data, len);
    write_in_steps(s, data, len, odd_steps, ARRAY_SIZE(odd_steps));
    cr_assert_eq(s->bytes, len);
    sink_free(s);
    cr_assert_neq(fcntl(fd, F_GETFD), -1, "the sink must not close the fd");
    close(fd);
    check_content(path, data, len);
    free(data);
    remove_tmp(path);
}

Test(stream, sparse_file_sink_leaves_holes)
{
    char *sparse = tmp_path("sparse");
    char *dense = xasprintf("%s.dense", sparse);
    size_t len = 8 * MIB, data_bytes;
    unsigned char *data = holey_image(len, &data_bytes);
    int fd = create(sparse);
    int fd2 = create(dense);
    struct sink *s = file_sink_new(fd, sparse, true);
    struct sink *d = file_sink_new(fd2, dense, false);

    write_in_steps(s, data, len, odd_steps, ARRAY_SIZE(odd_steps));
    write_in_steps(d, data, len, odd_steps, ARRAY_SIZE(odd_steps));
    sink_free(s);
    sink_free(d);
    close(fd);
    close(fd2);
    check_content(sparse, data, len);
    check_content(dense, data, len);
    cr_assert_leq(allocated(sparse), data_bytes + 64 * KIB,
                  "%llu bytes allocated for %zu bytes of data",
                  (unsigned long long)allocated(sparse), data_bytes);
    cr_assert_geq(allocated(dense), len, "without sparse, every block is written");
    free(data);
    cr_assert_eq(unlink(dense), 0);
    free(dense);
    remove_tmp(sparse);
}

Test(stream, sparse_file_sink_keeps_a_trailing_hole)
{
    char *path = tmp_path("tail");
    int fd = create(path);
    size_t len = 3 * MIB + 4 * KIB + 17; /* unaligned zero tail */
    unsigned char *data = xcalloc(1, len);
    struct sink *s = file_sink_new(fd, path, true);
    static const size_t steps[] = { 4 * KIB, MIB };
    struct stat st;

    fill_random(data, 4 * KIB);
    write_in_steps(s, data, len, steps, ARRAY_SIZE(steps));
    sink_free(s);
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq((size_t)st.st_size, len);
    close(fd);
    check_content(path, data, len);
    cr_assert_leq(allocated(path), 16 * KIB);
    free(data);
    remove_tmp(path);
}

Test(stream, sparse_file_sink_all_zeros)
{
    char *path = tmp_path("zeros");
    int fd = create(path);
    size_t len = 4 * MIB;
    unsigned char *data = xcalloc(1, len);
    struct sink *s = file_sink_new(fd, path, true);
    static const size_t steps[] = { 1000 };

    write_in_steps(s, data, len, steps, ARRAY_SIZE(steps));
    sink_free(s);
    close(fd);
    check_content(path, data, len);
    cr_assert_eq(allocated(path), 0);
    free(data);
    remove_tmp(path);
}

Test(stream, file_sink_full_device_is_one_clear_reason)
{
    static const bool modes[] = { false, true };
    unsigned char *data = xcalloc(1, MIB);

    data[0] = 1;
    for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
        int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
        struct sink *s = file_sink_new(fd, "/dev/full", modes[i]);

        cr_assert_geq(fd, 0);
        fail_reset();
        /* A device has no holes: the zeros must be written, and fail. */
        cr_assert(sink_write(s, data, MIB) < 0 || sink_close(s) < 0);
        cr_assert(starts_with(fail_reason(), "no space left on the device for '/dev/full'"),
                  "%s", fail_reason());
        sink_free(s);
        close(fd);
    }
    free(data);
}

Test(stream, file_sink_write_error_names_the_file)
{
    char *path = tmp_path("ro");
    int fd = create(path);
    int ro = open(path, O_RDONLY | O_CLOEXEC);
    struct sink *s = file_sink_new(ro, "the-target", false);
    static unsigned char block[256 * KIB] = { 1 };

    close(fd);
    cr_assert(sink_write(s, block, sizeof(block)) < 0 || sink_close(s) < 0);
    cr_assert(starts_with(fail_reason(), "cannot write 'the-target': "), "%s", fail_reason());
    sink_free(s);
    close(ro);
    remove_tmp(path);
}

static void on_alarm(int sig UNUSED)
{
}

/* Into a pipe read slowly while a timer keeps interrupting write(): short
 * writes and EINTR, and no holes (a pipe cannot seek) even when asked. */
Test(stream, file_sink_into_a_slow_pipe)
{
    char *path = tmp_path("from-pipe");
    size_t len = 4 * MIB + 5, data_bytes;
    unsigned char *data = holey_image(8 * MIB, &data_bytes);
    struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */
    struct itimerval tick = { { 0, 500 }, { 0, 500 } };
    int p[2];
    pid_t pid;
    int status;

    cr_assert_eq(pipe(p), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char buf[3000];
        ssize_t n;

        close(p[1]);
        while ((n = read(p[0], buf, sizeof(buf))) > 0) {
            if (write(out, buf, (size_t)n) != n)
                _exit(1);
            usleep(20);
        }
        _exit(n == 0 ? 0 : 1);
    }
    close(p[0]);
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &tick, NULL);
    {
        struct sink *s = file_sink_new(p[1], "pipe", true);

        write_in_steps(s, data + 2 * MIB, len, odd_steps, ARRAY_SIZE(odd_steps));
        sink_free(s);
    }
    memset(&tick, 0, sizeof(tick));
    setitimer(ITIMER_REAL, &tick, NULL);
    close(p[1]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    check_content(path, data + 2 * MIB, len);
    free(data);
    remove_tmp(path);
}

/* ---- fd_pump ---- */

Test(stream, fd_pump_reads_to_the_end)
{
    char *path = tmp_path("src");
    size_t len = MIB + 3;
    unsigned char *data = xmalloc(len);
    struct sink *head = head_sink_new(len + 10);
    const void *got;
    size_t got_len;
    int fd;

    fill_random(data, len);
    fd = create(path);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    cr_assert_eq(fd_pump(fd, path, head), 0, "%s", fail_reason());
    got = head_sink_data(head, &got_len);
    cr_assert_eq(got_len, len);
    cr_assert(memcmp(got, data, len) == 0);
    cr_assert_eq(head->bytes, len);
    sink_free(head);
    close(fd);
    free(data);
    remove_tmp(path);
}

Test(stream, fd_pump_read_error_names_the_source)
{
    char *dir = test_tmpdir();
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct sink *s = null_sink_new();

    cr_assert_eq(fd_pump(fd, "the-source", s), -1);
    cr_assert(starts_with(fail_reason(), "cannot read 'the-source': "), "%s", fail_reason());
    sink_free(s);
    close(fd);
    rmdir(dir);
    free(dir);
}

Test(stream, fd_pump_stops_at_a_failing_sink)
{
    struct probe *p = probe_new();
    int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);

    p->fail = true;
    cr_assert_eq(fd_pump(fd, "/dev/zero", &p->s), -1);
    cr_assert_eq(p->writes, 1);
    cr_assert_str_eq(fail_reason(), "probe refuses");
    sink_free(&p->s);
    close(fd);
}

/* ---- is_http_url ---- */

Test(stream, is_http_url)
{
    cr_assert(is_http_url("http://example.com/a.qcow2"));
    cr_assert(is_http_url("https://example.com"));
    cr_assert(is_http_url("HTTPS://Example.com/x"));
    cr_assert(is_http_url("http://[::1]:8080/img"));
    cr_assert_not(is_http_url(NULL));
    cr_assert_not(is_http_url(""));
    cr_assert_not(is_http_url("http://"));
    cr_assert_not(is_http_url("http:///etc/passwd"));
    cr_assert_not(is_http_url("ftp://example.com/x"));
    cr_assert_not(is_http_url("file:///etc/passwd"));
    cr_assert_not(is_http_url("/var/tmp/http://x"));
    cr_assert_not(is_http_url("httpx://example.com"));
}
