/* test_image.c - the native header probe against images made by real qemu-img. */
#include "testlib.h"

#include "image.h"
#include "qemu_img.h"
#include "run.h"

static char *dir;
/* Paths made by make(), freed after each test. */
static char *made[16];
static size_t nmade;

static void setup(void)
{
    test_config(NULL);
    dir = test_tmpdir();
}

static void teardown(void)
{
    while (nmade)
        free(made[--nmade]);
    free(dir);
}

TestSuite(image, .init = setup, .fini = teardown, .timeout = 60);

static char *make(const char *name, const char *const *qemu_img_args)
{
    struct cmd c = CMD_INIT;
    char *path = xasprintf("%s/%s", dir, name);

    strvec_push(&c.args, "qemu-img");
    strvec_pushv(&c.args, qemu_img_args);
    strvec_push(&c.args, path);
    c.dir = dir;
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    cmd_release(&c);
    cr_assert_lt(nmade, ARRAY_SIZE(made));
    made[nmade++] = path;
    return path;
}

Test(image, qcow2_v3_size_and_no_backing)
{
    const char *args[] = { "create", "-q", "-f", "qcow2", "-o", "size=3G", NULL };
    char *p = make("base.qcow2", args);
    struct image_info ii;

    cr_assert_eq(image_probe_path(p, &ii), 0, "%s", fail_reason());
    cr_assert_str_eq(ii.format, "qcow2");
    cr_assert(ii.size_known);
    cr_assert_eq(ii.virtual_size, 3ull << 30);
    cr_assert_eq(ii.qcow2_version, 3);
    cr_assert_eq(ii.cluster_bits, 16);
    cr_assert_null(ii.backing_file);
    cr_assert(image_is_standalone(&ii));
    image_info_release(&ii);
}

Test(image, qcow2_v2_compat)
{
    const char *args[] = { "create", "-q", "-f", "qcow2", "-o", "compat=0.10,size=1M", NULL };
    char *p = make("old.qcow2", args);
    struct image_info ii;

    cr_assert_eq(image_probe_path(p, &ii), 0, "%s", fail_reason());
    cr_assert_eq(ii.qcow2_version, 2);
    cr_assert_eq(ii.virtual_size, 1ull << 20);
    image_info_release(&ii);
}

Test(image, overlay_backing_file_and_format_relative_and_absolute)
{
    const char *base[] = { "create", "-q", "-f", "raw", "-o", "size=16M", NULL };
    char *b = make("base.raw", base);
    const char *rel[] = { "create", "-q", "-f", "qcow2", "-F", "raw", "-b", "base.raw", NULL };
    char *o = make("rel.qcow2", rel);
    const char *abs[] = { "create", "-q", "-f", "qcow2", "-F", "raw", "-b", b, NULL };
    char *a = make("abs.qcow2", abs);
    struct image_info ii;

    cr_assert_eq(image_probe_path(o, &ii), 0, "%s", fail_reason());
    cr_assert_str_eq(ii.backing_file, "base.raw");
    cr_assert_str_eq(ii.backing_format, "raw");
    cr_assert_eq(ii.virtual_size, 16ull << 20, "inherits the backing size");
    cr_assert(!image_is_standalone(&ii));
    image_info_release(&ii);
    cr_assert_eq(image_probe_path(a, &ii), 0, "%s", fail_reason());
    cr_assert_str_eq(ii.backing_file, b);
    image_info_release(&ii);
}

Test(image, agrees_with_qemu_img_info)
{
    const char *args[] = { "create", "-q", "-f", "qcow2", "-o", "size=12345678901", NULL };
    char *p = make("odd.qcow2", args);
    struct image_info ii;
    struct cmd c = CMD_INIT;
    char *fmt = NULL;
    uint64_t vs = 0;

    qi_info(&c, p, 0);
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    cr_assert_eq(qi_parse_info(c.out.buf, &fmt, &vs), 0, "%s", fail_reason());
    cr_assert_eq(image_probe_path(p, &ii), 0, "%s", fail_reason());
    cr_assert_str_eq(ii.format, fmt);
    cr_assert_eq(ii.virtual_size, vs);
    image_info_release(&ii);
    free(fmt);
    cmd_release(&c);
}

Test(image, internal_snapshots_are_counted)
{
    const char *args[] = { "create", "-q", "-f", "qcow2", "-o", "size=1M", NULL };
    char *p = make("snaps.qcow2", args);
    struct cmd c = CMD_INIT;
    struct image_info ii;

    strvec_pushl(&c.args, "qemu-img", "snapshot", "-c", "s1", p, NULL);
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    cr_assert_eq(image_probe_path(p, &ii), 0, "%s", fail_reason());
    cr_assert_eq(ii.nb_snapshots, 1);
    image_info_release(&ii);
    cmd_release(&c);
}

Test(image, raw_is_its_length_and_other_formats_by_magic)
{
    const char *vmdk[] = { "create", "-q", "-f", "vmdk", "-o", "size=1M", NULL };
    const char *vdi[] = { "create", "-q", "-f", "vdi", "-o", "size=1M", NULL };
    const char *vhdx[] = { "create", "-q", "-f", "vhdx", "-o", "size=1M", NULL };
    struct image_info ii;
    char *raw = xasprintf("%s/plain", dir);

    made[nmade++] = raw;

    test_write_file(raw, "hello, not an image");
    cr_assert_eq(image_probe_path(raw, &ii), 0);
    cr_assert_str_eq(ii.format, "raw");
    cr_assert_eq(ii.virtual_size, 19);
    cr_assert_eq(image_probe_path(make("x.vmdk", vmdk), &ii), 0);
    cr_assert_str_eq(ii.format, "vmdk");
    cr_assert_eq(image_probe_path(make("x.vdi", vdi), &ii), 0);
    cr_assert_str_eq(ii.format, "vdi");
    cr_assert_eq(image_probe_path(make("x.vhdx", vhdx), &ii), 0);
    cr_assert_str_eq(ii.format, "vhdx");
}

Test(image, hostile_qcow2_headers_are_refused_not_trusted)
{
    unsigned char h[512] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };
    struct image_info ii;

    h[23] = 16;             /* cluster bits */
    h[7] = 3;
    cr_assert_eq(image_probe_buf(h, 50, 0, &ii), -1, "truncated header accepted");
    fail_reset();
    h[103] = 104;           /* header length */
    h[15] = 0xf0;           /* backing name offset 240 */
    h[19] = 0xff;           /* ... of 255 bytes: beyond what we hold */
    cr_assert_eq(image_probe_buf(h, 300, 0, &ii), -1);
    cr_assert(strstr(fail_reason(), "backing file name"), "%s", fail_reason());
    fail_reset();
    h[7] = 9;               /* unknown version */
    cr_assert_eq(image_probe_buf(h, sizeof(h), 0, &ii), -1);
}

Test(image, missing_file_is_a_reason)
{
    struct image_info ii;

    cr_assert_eq(image_probe_path("/nonexistent/qcow2c/img", &ii), -1);
    cr_assert(strstr(fail_reason(), "cannot open image '/nonexistent/qcow2c/img'"), "%s",
              fail_reason());
}
