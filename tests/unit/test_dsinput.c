/* test_dsinput.c - the DS_DRIVER_ACTION_DATA message a DS action reads on
 * stdin (protocol §5.1-5.2), from the exact bytes oned sent. */
#include "testlib.h"

#include <sys/wait.h>

#include "b64.h"
#include "dsinput.h"

TestSuite(dsinput, .timeout = 60);

static void assert_get(const struct xml *x, const char *want, const char *expr)
{
    char *s = xml_get(x, "%s", expr);

    cr_assert_not_null(s, "%s is missing", expr);
    cr_assert_str_eq(s, want, "%s", expr);
    free(s);
}

struct capture {
    const char *dir;
    const char *ds_id;
    const char *image_id; /* NULL: no IMAGE (monitor) */
    const char *image_path;
    const char *ds_type; /* 0 image, 1 system */
};

static const struct capture captures[] = {
    { "ds/cp/1", "107", "19", "/var/tmp/lab-images/lab-os.qcow2", "0" },
    { "ds/clone/1", "107", "22", "/var/lib/one//datastores/107/7884294dec91169f7f22cacffae86121",
      "0" },
    { "ds/mkfs/1", "107", "20", "", "0" },
    { "ds/mkfs/2", "107", "21", "", "0" },
    { "ds/rm/1", "107", "22", "/var/lib/one//datastores/107/7884294dec91169f7f22cacffae86121",
      "0" },
    { "ds/rm/2", "107", "21", "", "0" },
    { "ds/stat/1", "107", NULL, "/var/tmp/lab-images/lab-os.qcow2", "0" },
    { "ds/monitor/1", "105", NULL, NULL, "0" },
    { "ds/monitor/2", "107", NULL, NULL, "0" },
    { "tm/monitor/1", "104", NULL, NULL, "1" },
    { "tm/monitor/2", "106", NULL, NULL, "1" },
};

static void check_capture(const struct capture *c, const struct xml *x)
{
    assert_get(x, c->ds_id, "/DS_DRIVER_ACTION_DATA/DATASTORE/ID");
    assert_get(x, c->ds_type, "/DS_DRIVER_ACTION_DATA/DATASTORE/TYPE");
    if (c->image_id)
        assert_get(x, c->image_id, "/DS_DRIVER_ACTION_DATA/IMAGE/ID");
    if (c->image_path)
        assert_get(x, c->image_path, "/DS_DRIVER_ACTION_DATA/IMAGE/PATH");
    else
        cr_assert_eq(xml_count(x, "/DS_DRIVER_ACTION_DATA/IMAGE"), 0, "%s has an IMAGE", c->dir);
}

Test(dsinput, every_captured_message_parses)
{
    for (size_t i = 0; i < ARRAY_SIZE(captures); i++) {
        const struct capture *c = &captures[i];
        struct sbuf in = SBUF_INIT, argv = SBUF_INIT;
        char *p = xasprintf("%s/stdin", c->dir);
        char *pa = xasprintf("%s/argv", c->dir);
        struct xml *x;

        test_read_fixture(p, &in);
        test_read_fixture(pa, &argv);
        sbuf_rtrim(&argv);
        fail_reset();
        x = ds_input_parse(in.buf, in.len);
        cr_assert_not_null(x, "%s: %s", p, fail_reason());
        cr_assert(!failed(), "%s: %s", p, fail_reason());
        check_capture(c, x);
        /* the id argument of cp/clone/mkfs/rm is the image id in the message */
        if (c->image_id)
            cr_assert_str_eq(argv.buf, c->image_id, "%s", pa);
        if (starts_with(c->dir, "ds/monitor") || starts_with(c->dir, "tm/monitor"))
            cr_assert_str_eq(argv.buf, c->ds_id, "%s", pa);
        xml_free(x);
        sbuf_release(&in);
        sbuf_release(&argv);
        free(p);
        free(pa);
    }
}

Test(dsinput, captured_details)
{
    struct sbuf in = SBUF_INIT;
    struct xml *x;

    test_read_fixture("ds/cp/1/stdin", &in);
    x = ds_input_parse(in.buf, in.len);
    cr_assert_not_null(x, "%s", fail_reason());
    assert_get(x, "/var/lib/one//datastores/107", "/DS_DRIVER_ACTION_DATA/DATASTORE/BASE_PATH");
    assert_get(x, "qcow2c", "/DS_DRIVER_ACTION_DATA/DATASTORE/DS_MAD");
    assert_get(x, "qcow2c", "/DS_DRIVER_ACTION_DATA/DATASTORE/TM_MAD");
    assert_get(x, "64", "/DS_DRIVER_ACTION_DATA/IMAGE/SIZE");
    assert_get(x, "", "/DS_DRIVER_ACTION_DATA/IMAGE/SOURCE");
    assert_get(x, "lab-qcow2c-181553-os", "/DS_DRIVER_ACTION_DATA/IMAGE/NAME");
    xml_free(x);
    sbuf_release(&in);

    test_read_fixture("tm/monitor/1/stdin", &in);
    x = ds_input_parse(in.buf, in.len);
    cr_assert_not_null(x, "%s", fail_reason());
    assert_get(x, "/var/lib/one//datastores", "/DS_DRIVER_ACTION_DATA/DATASTORE_LOCATION");
    xml_free(x);
    sbuf_release(&in);
}

/* A message typed or pasted by a human: trailing newline, CRLF, wrapping. */
Test(dsinput, trailing_blanks_and_wrapping_are_tolerated)
{
    static const char *const tails[] = { "\n", "\r\n", " ", "\t\n", "\n\n\n" };
    struct sbuf in = SBUF_INIT;

    test_read_fixture("ds/clone/1/stdin", &in);
    for (size_t i = 0; i < ARRAY_SIZE(tails); i++) {
        struct sbuf msg = SBUF_INIT;
        struct xml *x;

        sbuf_add(&msg, in.buf, in.len);
        sbuf_adds(&msg, tails[i]);
        fail_reset();
        x = ds_input_parse(msg.buf, msg.len);
        cr_assert_not_null(x, "tail %zu: %s", i, fail_reason());
        assert_get(x, "22", "/DS_DRIVER_ACTION_DATA/IMAGE/ID");
        xml_free(x);
        sbuf_release(&msg);
    }
    {
        struct sbuf msg = SBUF_INIT;
        struct xml *x;

        for (size_t i = 0; i < in.len; i += 76) {
            sbuf_add(&msg, in.buf + i, in.len - i < 76 ? in.len - i : 76);
            sbuf_adds(&msg, "\n");
        }
        x = ds_input_parse(msg.buf, msg.len);
        cr_assert_not_null(x, "wrapped: %s", fail_reason());
        xml_free(x);
        sbuf_release(&msg);
    }
    sbuf_release(&in);
}

static void assert_refused(const char *in, size_t len, const char *reason_start)
{
    struct xml *x;

    fail_reset();
    x = ds_input_parse(in, len);
    cr_assert_null(x, "'%.*s' accepted", (int)len, in);
    cr_assert(failed());
    cr_assert(starts_with(fail_reason(), reason_start), "reason: '%s', want '%s...'", fail_reason(),
              reason_start);
    cr_assert_null(strchr(fail_reason(), '\n'), "%s", fail_reason());
}

static void assert_refused_b64(const char *plain, const char *reason_start)
{
    struct sbuf enc = SBUF_INIT;

    b64_encode(plain, strlen(plain), &enc);
    assert_refused(enc.buf, enc.len, reason_start);
    sbuf_release(&enc);
}

Test(dsinput, empty_stdin)
{
    assert_refused("", 0, "no driver message on stdin (expected base64 DS_DRIVER_ACTION_DATA)");
    cr_assert_str_eq(fail_reason(),
                     "no driver message on stdin (expected base64 DS_DRIVER_ACTION_DATA)");
    assert_refused("\n", 1, "no driver message on stdin");
    assert_refused(" \t\r\n ", 5, "no driver message on stdin");
}

Test(dsinput, not_base64)
{
    assert_refused("hello world!", 12,
                   "the driver message on stdin is not valid base64: unexpected character 0x20 "
                   "at offset 5");
    /* the literal '-' oned's driver uses for an empty payload */
    assert_refused("-", 1, "the driver message on stdin is not valid base64: ");
    /* raw XML instead of its encoding */
    assert_refused("<DS_DRIVER_ACTION_DATA/>", 24,
                   "the driver message on stdin is not valid base64: unexpected character 0x3c");
    assert_refused("PERTX0RS", 7, "the driver message on stdin is not valid base64: truncated");
    /* NUL bytes are not blanks */
    assert_refused("\0\0\0", 3,
                   "the driver message on stdin is not valid base64: unexpected character 0x00");
}

Test(dsinput, a_trailing_nul_is_not_a_blank)
{
    struct sbuf in = SBUF_INIT;

    test_read_fixture("ds/cp/1/stdin", &in);
    sbuf_addch(&in, 0);
    assert_refused(in.buf, in.len,
                   "the driver message on stdin is not valid base64: "
                   "unexpected character 0x00");
    sbuf_release(&in);
}

Test(dsinput, base64_of_something_else)
{
    assert_refused_b64("not xml at all",
                       "the driver message on stdin is not a DS_DRIVER_ACTION_DATA document: "
                       "malformed XML");
    assert_refused_b64("<DS_DRIVER_ACTION_DATA><IMAGE>",
                       "the driver message on stdin is not a DS_DRIVER_ACTION_DATA document: "
                       "malformed XML");
    assert_refused_b64("<VM><ID>1</ID></VM>",
                       "the driver message on stdin is not a DS_DRIVER_ACTION_DATA document: "
                       "unexpected XML document: the root element is <VM>, not "
                       "<DS_DRIVER_ACTION_DATA>");
    assert_refused_b64("<DS_DRIVER_ACTION_DATA/>\x01", "the driver message on stdin is not a "
                                                       "DS_DRIVER_ACTION_DATA document");
}

/* The decoded message of a capture with another root: refused. */
Test(dsinput, decoded_capture_with_another_root)
{
    struct sbuf xml = SBUF_INIT, enc = SBUF_INIT;

    test_read_fixture("ds/cp/1/stdin.decoded.xml", &xml);
    cr_assert(starts_with(xml.buf, "<DS_DRIVER_ACTION_DATA>"));
    memcpy(xml.buf + 1, "XS", 2);
    memcpy(xml.buf + xml.len - 22, "XS", 2);
    b64_encode(xml.buf, xml.len, &enc);
    assert_refused(enc.buf, enc.len,
                   "the driver message on stdin is not a DS_DRIVER_ACTION_DATA document: "
                   "unexpected XML document: the root element is <XS_DRIVER_ACTION_DATA>");
    sbuf_release(&xml);
    sbuf_release(&enc);
}

static int file_with(const char *content, size_t len)
{
    FILE *f = tmpfile();
    int fd;

    cr_assert_not_null(f);
    fd = dup(fileno(f));
    fclose(f);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

Test(dsinput, read_from_a_file_descriptor)
{
    struct sbuf in = SBUF_INIT;
    struct xml *x;
    int fd;

    test_read_fixture("ds/mkfs/1/stdin", &in);
    fd = file_with(in.buf, in.len);
    x = ds_input_read(fd);
    close(fd);
    cr_assert_not_null(x, "%s", fail_reason());
    assert_get(x, "20", "/DS_DRIVER_ACTION_DATA/IMAGE/ID");
    xml_free(x);
    sbuf_release(&in);
}

/* Through a pipe written in small pieces, as oned's driver may. */
Test(dsinput, read_from_a_pipe_in_pieces)
{
    struct sbuf in = SBUF_INIT;
    struct xml *x;
    int fds[2];
    pid_t pid;

    test_read_fixture("ds/rm/2/stdin", &in);
    cr_assert_eq(pipe(fds), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        for (size_t i = 0; i < in.len; i += 100) {
            size_t n = in.len - i < 100 ? in.len - i : 100;

            if (write(fds[1], in.buf + i, n) != (ssize_t)n)
                _exit(1);
            usleep(1000);
        }
        _exit(0);
    }
    close(fds[1]);
    x = ds_input_read(fds[0]);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    cr_assert_not_null(x, "%s", fail_reason());
    assert_get(x, "21", "/DS_DRIVER_ACTION_DATA/IMAGE/ID");
    xml_free(x);
    sbuf_release(&in);
}

Test(dsinput, read_empty_and_closed_stdin)
{
    int fd = file_with("", 0);

    cr_assert_null(ds_input_read(fd));
    close(fd);
    cr_assert(starts_with(fail_reason(), "no driver message on stdin"), "%s", fail_reason());

    fail_reset();
    cr_assert_null(ds_input_read(-1));
    cr_assert_str_eq(fail_reason(), "cannot read the driver message on stdin: Bad file descriptor");
}

/* Exactly 64 MiB is read (and refused for what it is: NUL bytes). */
Test(dsinput, read_limit_is_inclusive)
{
    char *dir = test_tmpdir();
    char *path = xasprintf("%s/huge", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 64 << 20), 0);
    cr_assert_null(ds_input_read(fd));
    close(fd);
    cr_assert(starts_with(fail_reason(), "the driver message on stdin is not valid base64"), "%s",
              fail_reason());
    unlink(path);
    free(path);
    free(dir);
}

/* More than 64 MiB is refused without reading it all. */
Test(dsinput, read_limit)
{
    char *dir = test_tmpdir();
    char *path = xasprintf("%s/huge", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

    cr_assert_geq(fd, 0);
    /* a sparse file: reads as NUL bytes, takes no space */
    cr_assert_eq(ftruncate(fd, (64 << 20) + 1), 0);
    cr_assert_null(ds_input_read(fd));
    close(fd);
    cr_assert_str_eq(fail_reason(), "the driver message on stdin is larger than 64 MiB");
    unlink(path);
    free(path);
    free(dir);
}
