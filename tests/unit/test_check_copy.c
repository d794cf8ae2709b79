/*
 * test_check_copy.c - the one-instant check of tests/harness/check_copy_logic.c
 * on synthetic images (made here the way the guest's writer lays out its
 * ring file), and the check-copy program on raw and qcow2 files.
 *
 * The Makefile links unit tests with libqcow2c only, and the check logic is
 * a harness module: this file compiles it in.
 */
#include "testlib.h"

#include <inttypes.h>

#include "../harness/check_copy_logic.c"
#include "run.h"

TestSuite(check_copy, .timeout = 60);

/* The writer's layout (tests/lib/guest.sh): slot k at BASE + k * STRIDE, the
 * header after the last slot; BASE stands for where ext4 put the file. */
#define STRIDE 65536u
#define BASE (1u << 20)

struct img {
    unsigned char *buf;
    size_t len;
    uint32_t ring;
};

static struct img img_new(uint32_t ring)
{
    struct img im = { .len = BASE + (size_t)(ring + 2) * STRIDE, .ring = ring };

    im.buf = xcalloc(1, im.len);
    return im;
}

static uint64_t slot_off(const struct img *im, uint64_t counter)
{
    return BASE + (counter % im->ring) * STRIDE;
}

static uint64_t hdr_off(const struct img *im)
{
    return BASE + (uint64_t)im->ring * STRIDE;
}

static struct ccl_record rec(enum ccl_kind kind, uint32_t ring, uint32_t boot, uint64_t n)
{
    return (struct ccl_record){ .kind = kind,
                                .ring_size = ring,
                                .boot = boot,
                                .counter = n,
                                .time_ns = 1000000000u + n * 50000000u };
}

static void put(struct img *im, uint64_t off, const struct ccl_record *r)
{
    cr_assert_leq(off + CCL_RECORD_LEN, im->len);
    ccl_encode(r, im->buf + off);
}

/* The disk after the writer wrote records 1..h (boot 1) from a fresh ring;
 * `in_flight`: record h + 1 is in its slot, not yet in the header. */
static void write_upto(struct img *im, uint64_t h, bool in_flight)
{
    struct ccl_record r = rec(CCL_HEADER, im->ring, 0, 0);

    r.time_ns = 0;
    put(im, hdr_off(im), &r);
    for (uint64_t m = 1; m <= h; m++) {
        r = rec(CCL_RING, im->ring, 1, m);
        put(im, slot_off(im, m), &r);
        r.kind = CCL_HEADER;
        put(im, hdr_off(im), &r);
    }
    if (in_flight) {
        r = rec(CCL_RING, im->ring, 1, h + 1);
        put(im, slot_off(im, h + 1), &r);
    }
}

/* Scans the image in pieces of `chunk` bytes (a multiple of 512). */
static void judge_chunked(const struct img *im, size_t chunk, struct ccl_verdict *v)
{
    struct ccl_scan s;

    ccl_scan_init(&s);
    for (size_t off = 0; off < im->len; off += chunk)
        ccl_scan_feed(&s, off, im->buf + off, im->len - off < chunk ? im->len - off : chunk);
    ccl_judge(&s, v);
    ccl_scan_release(&s);
}

static void judge(const struct img *im, struct ccl_verdict *v)
{
    judge_chunked(im, im->len, v);
}

static void assert_consistent(const struct img *im, uint64_t h)
{
    struct ccl_verdict v;

    judge(im, &v);
    cr_assert(v.consistent, "h=%" PRIu64 " ring=%" PRIu32 ": %s", h, im->ring, v.reason);
    cr_assert_eq(v.counter, h);
    cr_assert_eq(v.ring_size, im->ring);
}

static void assert_torn(const struct img *im, const char *why, struct ccl_verdict *v)
{
    judge(im, v);
    cr_assert_not(v->consistent, "taken for consistent (counter %" PRIu64 ")", v->counter);
    cr_assert(strstr(v->reason, why), "reason '%s' does not say '%s'", v->reason, why);
}

/* ---- the record format ---- */

Test(check_copy, crc32_is_ieee)
{
    cr_assert_eq(ccl_crc32("123456789", 9), 0xcbf43926u);
    cr_assert_eq(ccl_crc32("", 0), 0);
}

Test(check_copy, encode_decode_round_trip)
{
    unsigned char b[CCL_SECTOR] = { 0 };
    struct ccl_record in = { .kind = CCL_RING,
                             .ring_size = 64,
                             .boot = 7,
                             .counter = UINT64_C(0x0123456789abcdef),
                             .time_ns = 42 };
    struct ccl_record out;

    ccl_encode(&in, b);
    cr_assert(memcmp(b, CCL_MAGIC, 8) == 0);
    cr_assert_eq(ccl_decode(b, sizeof(b), &out), 1);
    cr_assert_eq(out.kind, in.kind);
    cr_assert_eq(out.ring_size, in.ring_size);
    cr_assert_eq(out.boot, in.boot);
    cr_assert_eq(out.counter, in.counter);
    cr_assert_eq(out.time_ns, in.time_ns);
    /* little-endian whatever the host */
    cr_assert_eq(b[24], 0xef);
    cr_assert_eq(b[31], 0x01);
}

/* Sets byte `at` of an encoded record and makes its CRC right again, so that
 * only the field check can refuse it. */
static void patch(unsigned char *b, size_t at, unsigned char v)
{
    uint32_t crc;

    b[at] = v;
    crc = ccl_crc32(b, 44);
    for (int i = 0; i < 4; i++)
        b[44 + i] = (unsigned char)(crc >> (8 * i));
}

Test(check_copy, decode_refuses_damage_and_bad_fields)
{
    struct ccl_record r = rec(CCL_RING, 8, 1, 5), out;
    unsigned char b[CCL_SECTOR] = { 0 }, c[CCL_SECTOR];

    cr_assert_eq(ccl_decode(b, sizeof(b), &out), 0, "zeros are no record");
    ccl_encode(&r, b);
    cr_assert_eq(ccl_decode(b, CCL_RECORD_LEN - 1, &out), 0, "too short");
    for (size_t i = 8; i < CCL_RECORD_LEN; i++) {
        memcpy(c, b, sizeof(c));
        c[i] ^= 0x10;
        cr_assert_eq(ccl_decode(c, sizeof(c), &out), -1, "byte %zu flipped", i);
    }
    memcpy(c, b, sizeof(c));
    patch(c, 8, 2); /* version */
    cr_assert_eq(ccl_decode(c, sizeof(c), &out), -1);
    memcpy(c, b, sizeof(c));
    patch(c, 12, 3); /* kind */
    cr_assert_eq(ccl_decode(c, sizeof(c), &out), -1);
    memcpy(c, b, sizeof(c));
    patch(c, 16, 0); /* ring size 0 */
    cr_assert_eq(ccl_decode(c, sizeof(c), &out), -1);
    memcpy(c, b, sizeof(c));
    patch(c, 18, 1); /* ring size 65544 > CCL_MAX_RING */
    cr_assert_eq(ccl_decode(c, sizeof(c), &out), -1);
    memcpy(c, b, sizeof(c));
    patch(c, 24, 0); /* a ring record with counter 0 */
    cr_assert_eq(ccl_decode(c, sizeof(c), &out), -1);
    memcpy(c, b, sizeof(c));
    patch(c, 40, 1); /* reserved */
    cr_assert_eq(ccl_decode(c, sizeof(c), &out), -1);
}

Test(check_copy, scan_looks_only_at_sector_starts)
{
    unsigned char buf[4 * CCL_SECTOR] = { 0 };
    struct ccl_record r = rec(CCL_HEADER, 8, 1, 3);
    struct ccl_scan s;

    ccl_encode(&r, buf + 100); /* inside a sector: not a record */
    ccl_encode(&r, buf + 2 * CCL_SECTOR);
    ccl_scan_init(&s);
    ccl_scan_feed(&s, 0, buf, sizeof(buf));
    cr_assert_eq(s.n_found, 1);
    cr_assert_eq(s.found[0].offset, 2 * CCL_SECTOR);
    ccl_scan_release(&s);

    /* A piece that starts off a sector boundary: its partial first sector is
     * skipped, the sectors after it are examined. */
    ccl_scan_init(&s);
    ccl_scan_feed(&s, 1000, buf + 1000, sizeof(buf) - 1000);
    cr_assert_eq(s.n_found, 1);
    cr_assert_eq(s.found[0].offset, 2 * CCL_SECTOR);
    ccl_scan_release(&s);
    ccl_scan_init(&s);
    ccl_scan_feed(&s, 1030, buf + 1030, sizeof(buf) - 1030);
    cr_assert_eq(s.n_found, 0);
    ccl_scan_release(&s);
}

/* ---- verdicts ---- */

Test(check_copy, empty_image_has_no_header)
{
    struct img im = img_new(8);
    struct ccl_verdict v;

    assert_torn(&im, "no header record", &v);
    cr_assert_not(v.have_header);
    cr_assert_eq(v.ring_records, 0);
    free(im.buf);
}

Test(check_copy, fresh_disk_is_consistent_at_zero)
{
    struct img im = img_new(8);
    struct ccl_verdict v;

    write_upto(&im, 0, false);
    assert_consistent(&im, 0);
    judge(&im, &v);
    cr_assert_eq(v.ring_records, 0);
    cr_assert_eq(v.boot, 0);
    free(im.buf);
}

Test(check_copy, every_instant_of_the_writer_is_consistent)
{
    static const uint32_t rings[] = { 1, 2, 8, 64 };

    for (size_t i = 0; i < ARRAY_SIZE(rings); i++) {
        for (uint64_t h = 0; h <= 3 * rings[i] + 2; h++) {
            for (int f = 0; f < 2; f++) {
                struct img im = img_new(rings[i]);

                write_upto(&im, h, f);
                assert_consistent(&im, h);
                free(im.buf);
            }
        }
    }
}

Test(check_copy, verdict_does_not_depend_on_how_the_image_is_fed)
{
    static const size_t chunks[] = { 512, 1024, 4096, 3 * 512, 65536, 77 * 512 };
    struct img im = img_new(8);

    write_upto(&im, 21, true);
    for (size_t i = 0; i < ARRAY_SIZE(chunks); i++) {
        struct ccl_verdict v;

        judge_chunked(&im, chunks[i], &v);
        cr_assert(v.consistent, "chunk %zu: %s", chunks[i], v.reason);
        cr_assert_eq(v.counter, 21);
        cr_assert_eq(v.ring_records, 8);
        cr_assert_eq(v.time_ns, 1000000000u + 21 * 50000000u);
    }
    free(im.buf);
}

Test(check_copy, slot_older_than_the_header_is_stale)
{
    struct img im = img_new(8);
    struct ccl_record old = rec(CCL_RING, 8, 1, 10);
    struct ccl_verdict v;

    write_upto(&im, 20, false);
    put(&im, slot_off(&im, 18), &old); /* 18 was written after 10 */
    assert_torn(&im, "copied before the guest wrote it", &v);
    cr_assert_eq(v.stale, 1);
    cr_assert_eq(v.future + v.missing + v.duplicate + v.damaged, 0);
    free(im.buf);
}

Test(check_copy, slot_newer_than_header_plus_one_is_future)
{
    struct img im = img_new(8);
    struct ccl_record late = rec(CCL_RING, 8, 1, 22);
    struct ccl_verdict v;

    write_upto(&im, 20, true); /* 21 in flight: allowed */
    put(&im, slot_off(&im, 22), &late);
    assert_torn(&im, "newer than the header", &v);
    cr_assert_eq(v.future, 1);
    free(im.buf);
}

Test(check_copy, in_flight_slot_may_hold_either_record)
{
    struct img im = img_new(8);
    struct ccl_record r = rec(CCL_RING, 8, 1, 21);

    write_upto(&im, 20, false);
    assert_consistent(&im, 20); /* slot 21 % 8 still holds 13 */
    put(&im, slot_off(&im, 21), &r);
    assert_consistent(&im, 20); /* or already 21 */
    free(im.buf);
}

Test(check_copy, header_slot_must_hold_the_header_record)
{
    struct img im = img_new(8);
    struct ccl_verdict v;

    write_upto(&im, 20, false);
    memset(im.buf + slot_off(&im, 20), 0, CCL_RECORD_LEN);
    assert_torn(&im, "holds no record", &v);
    cr_assert_eq(v.missing, 1);
    free(im.buf);
}

Test(check_copy, header_slot_of_another_boot_is_stale)
{
    struct img im = img_new(8);
    struct ccl_record other = rec(CCL_RING, 8, 2, 20);
    struct ccl_verdict v;

    write_upto(&im, 20, false);
    other.time_ns += 7;
    put(&im, slot_off(&im, 20), &other);
    assert_torn(&im, "the header's is of boot 1", &v);
    free(im.buf);
}

Test(check_copy, two_headers_or_two_records_for_a_slot_are_torn)
{
    struct img im = img_new(8);
    struct ccl_record r = rec(CCL_HEADER, 8, 1, 12);
    struct ccl_verdict v;

    write_upto(&im, 20, false);
    put(&im, 0, &r);
    assert_torn(&im, "two header records", &v);
    cr_assert_eq(v.duplicate, 1);
    free(im.buf);

    im = img_new(8);
    write_upto(&im, 20, false);
    r = rec(CCL_RING, 8, 1, 12); /* slot 4 again, elsewhere */
    put(&im, 4096, &r);
    assert_torn(&im, "slot 4 twice", &v);
    free(im.buf);
}

Test(check_copy, damaged_or_foreign_records_are_torn)
{
    struct img im = img_new(8);
    struct ccl_record foreign = rec(CCL_RING, 16, 1, 3);
    struct ccl_verdict v;

    write_upto(&im, 20, false);
    im.buf[slot_off(&im, 17) + 30] ^= 1;
    assert_torn(&im, "damaged record", &v);
    cr_assert_eq(v.damaged, 1);
    free(im.buf);

    im = img_new(8);
    write_upto(&im, 20, false);
    put(&im, 512, &foreign);
    assert_torn(&im, "ring of 16 slots", &v);
    free(im.buf);
}

Test(check_copy, guest_time_going_back_is_disorder)
{
    struct img im = img_new(8);
    struct ccl_record r = rec(CCL_RING, 8, 1, 19);
    struct ccl_verdict v;

    write_upto(&im, 20, false);
    r.time_ns = 5; /* older than record 18 */
    put(&im, slot_off(&im, 19), &r);
    assert_torn(&im, "is older than record", &v);
    cr_assert_eq(v.disorder, 1, "19 vs 18");
    free(im.buf);
}

/* What a copy looks like when it reads the disk front to back while the guest
 * writes: the start from one instant, the rest from a later one. */
static void sequential_copy(uint32_t ring, uint64_t h0, uint64_t h1, size_t split, struct img *out)
{
    struct img a = img_new(ring), b = img_new(ring);

    write_upto(&a, h0, false);
    write_upto(&b, h1, false);
    *out = img_new(ring);
    memcpy(out->buf, a.buf, split);
    memcpy(out->buf + split, b.buf + split, out->len - split);
    free(a.buf);
    free(b.buf);
}

Test(check_copy, copy_read_while_the_guest_writes_is_torn)
{
    struct img im;
    struct ccl_verdict v;

    /* Header (at the end) read after the guest wrote 101..103 into slots
     * 37..39, which had been read already: stale slots. */
    sequential_copy(64, 100, 103, BASE + 40 * STRIDE, &im);
    judge(&im, &v);
    cr_assert_not(v.consistent);
    cr_assert_eq(v.stale, 3, "%s", v.reason);
    cr_assert_eq(v.counter, 103);
    free(im.buf);
    /* ... unless nothing the guest wrote meanwhile lies before the split. */
    sequential_copy(64, 100, 103, BASE + 5 * STRIDE, &im);
    assert_consistent(&im, 103);
    free(im.buf);
    /* Header read first (the other layout): the later slots are from the future. */
    {
        struct img a = img_new(64), b = img_new(64);

        write_upto(&a, 100, false);
        write_upto(&b, 110, false);
        memcpy(b.buf + hdr_off(&b), a.buf + hdr_off(&a), CCL_RECORD_LEN);
        judge(&b, &v);
        cr_assert_not(v.consistent);
        cr_assert_gt(v.future, 0, "%s", v.reason);
        free(a.buf);
        free(b.buf);
    }
}

/* ---- the program ---- */

static char *check_copy_bin(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    cr_assert_gt(n, 0);
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    return xasprintf("%s/../harness/check-copy", exe);
}

static void write_img(const char *path, const struct img *im)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
    /* Only the record blocks: the rest stays a hole, as in a sparse copy. */
    for (size_t off = 0; off < im->len; off += CCL_BLOCK)
        for (size_t i = off; i < off + CCL_BLOCK && i < im->len; i++)
            if (im->buf[i]) {
                cr_assert_eq(pwrite(fd, im->buf + off, CCL_BLOCK, (off_t)off), CCL_BLOCK);
                break;
            }
    cr_assert_eq(ftruncate(fd, (off_t)(im->len + (64u << 20))), 0);
    close(fd);
}

static int run_check(const char *image, struct sbuf *out)
{
    struct cmd c = CMD_INIT;
    char *bin = check_copy_bin();
    int status;

    strvec_pushl(&c.args, bin, image, NULL);
    c.timeout_s = 60;
    cr_assert_eq(cmd_run_status(&c), 0, "%s", fail_reason());
    status = c.status;
    sbuf_reset(out);
    sbuf_add(out, c.out.buf, c.out.len);
    cmd_release(&c);
    free(bin);
    return status;
}

static void qemu_img_convert(const char *from, const char *to)
{
    struct cmd c = CMD_INIT;

    strvec_pushl(&c.args, "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", from, to, NULL);
    c.timeout_s = 60;
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    cmd_release(&c);
}

Test(check_copy, program_reads_raw_and_qcow2)
{
    char *dir = test_tmpdir();
    char *raw = xasprintf("%s/disk.raw", dir), *qcow = xasprintf("%s/disk.qcow2", dir);
    struct sbuf out = SBUF_INIT;
    struct img im = img_new(64);
    int status;

    write_upto(&im, 130, true);
    write_img(raw, &im);
    status = run_check(raw, &out);
    cr_assert_eq(status, 0, "%s", out.buf);
    cr_assert_str_eq(out.buf, "CONSISTENT counter=130 at=7.500000 boot=1 ring=64 records=64\n");
    qemu_img_convert(raw, qcow);
    status = run_check(qcow, &out);
    cr_assert_eq(status, 0, "%s", out.buf);
    cr_assert_str_eq(out.buf, "CONSISTENT counter=130 at=7.500000 boot=1 ring=64 records=64\n");

    free(im.buf);
    sequential_copy(64, 130, 140, BASE + 40 * STRIDE, &im);
    write_img(raw, &im);
    status = run_check(raw, &out);
    cr_assert_eq(status, 1, "%s", out.buf);
    cr_assert(starts_with(out.buf, "TORN counter=140 at=8.000000 boot=1 stale="), "%s", out.buf);

    free(im.buf);
    im = img_new(8);
    write_img(raw, &im);
    status = run_check(raw, &out);
    cr_assert_eq(status, 1, "%s", out.buf);
    cr_assert(starts_with(out.buf, "TORN counter=- at=- boot=- "), "%s", out.buf);

    status = run_check("/nonexistent/disk.qcow2", &out);
    cr_assert_eq(status, 2);
    cr_assert_eq(out.len, 0);
    free(im.buf);
    sbuf_release(&out);
    free(qcow);
    free(raw);
    free(dir);
}
