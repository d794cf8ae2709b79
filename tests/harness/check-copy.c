/*
 * check-copy - was this copy of the writer guest's disk taken at one instant?
 *
 *   check-copy [-v] IMAGE
 *
 * IMAGE is a copy of (or the very disk of) a guest started by
 * tests/lib/guest.sh: raw (a file or a block device, read as is) or any
 * format qemu-img reads (qcow2, with or without a backing chain: converted
 * first with `qemu-img convert -U -O raw` into a sparse temporary file under
 * $TMPDIR, default /var/tmp). The rules are those of check_copy_logic.h.
 * Prints one line on stdout and exits:
 *
 *   0  CONSISTENT counter=<n> at=<guest seconds> boot=<b> ring=<N> records=<r>
 *   1  TORN counter=<n> at=<t> boot=<b> stale=.. future=.. missing=.. duplicate=..
 *           damaged=.. disorder=..: <the first problem>
 *      (also when no header is found: TORN counter=- ...)
 *   2  usage error, or IMAGE cannot be read (the reason on stderr)
 *
 * -v lists every record found (offset, kind, counter, boot, guest time) on
 * stderr first.
 */
#include "util.h"

#include <inttypes.h>

#include "check_copy_logic.h"
#include "cleanup.h"
#include "image.h"
#include "log.h"
#include "run.h"

#define CHUNK (1u << 20)

static void usage(void)
{
    fprintf(stderr, "usage: check-copy [-v] IMAGE\n");
    exit(2);
}

static int scan_range(int fd, const char *name, uint64_t from, uint64_t to, unsigned char *buf,
                      struct ccl_scan *s)
{
    /* Extents start on file-system blocks; round down to a sector anyway. */
    uint64_t pos = from - from % CCL_SECTOR;

    while (pos < to) {
        size_t want = to - pos < CHUNK ? (size_t)(to - pos) : CHUNK;
        ssize_t got = pread(fd, buf, want, (off_t)pos);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return fail_errno("cannot read %s at offset %" PRIu64, name, pos);
        if (got == 0)
            break;
        ccl_scan_feed(s, pos, buf, (size_t)got);
        pos += (uint64_t)got;
    }
    return 0;
}

/* Scans the data extents of a raw file (holes read as zeros and hold no
 * record), or the whole of a block device. */
static int scan_raw(const char *path, struct ccl_scan *s)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    _cleanup_free_ unsigned char *buf = NULL;
    struct stat st;
    off_t data, hole;

    if (fd < 0)
        return fail_errno("cannot open %s", path);
    if (fstat(fd, &st) < 0)
        return fail_errno("cannot stat %s", path);
    buf = xmalloc(CHUNK);
    if (!S_ISREG(st.st_mode))
        return scan_range(fd, path, 0, UINT64_MAX, buf, s);
    for (data = 0; data < st.st_size; data = hole) {
        data = lseek(fd, data, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break;
        if (data < 0) /* no SEEK_DATA here: read everything */
            return scan_range(fd, path, 0, (uint64_t)st.st_size, buf, s);
        hole = lseek(fd, data, SEEK_HOLE);
        if (hole < 0)
            hole = st.st_size;
        if (scan_range(fd, path, (uint64_t)data, (uint64_t)hole, buf, s) < 0)
            return -1;
    }
    return 0;
}

/* A qcow2 (or other non-raw) image, through a raw temporary copy. */
static int scan_converted(const char *path, const char *format, struct ccl_scan *s)
{
    const char *tmpdir = getenv("TMPDIR");
    _cleanup_free_ char *tmp =
        xasprintf("%s/check-copy.XXXXXX", str_empty(tmpdir) ? "/var/tmp" : tmpdir);
    struct cmd c = CMD_INIT;
    int fd, rc;

    fd = mkstemp(tmp);
    if (fd < 0)
        return fail_errno("cannot make a temporary file %s", tmp);
    close(fd);
    /* -U: the image may still be open in a running QEMU (the live disk). */
    strvec_pushl(&c.args, "qemu-img", "convert", "-U", "-q", "-f", format, "-O", "raw", path, tmp,
                 NULL);
    c.timeout_s = 900;
    rc = cmd_run(&c);
    cmd_release(&c);
    if (rc == 0)
        rc = scan_raw(tmp, s);
    unlink(tmp);
    return rc;
}

static void print_time(FILE *f, uint64_t ns)
{
    fprintf(f, "%" PRIu64 ".%06" PRIu64, ns / 1000000000u, ns % 1000000000u / 1000u);
}

static void list_records(const struct ccl_scan *s)
{
    for (size_t i = 0; i < s->n_found; i++) {
        const struct ccl_found *f = &s->found[i];

        fprintf(stderr,
                "check-copy: offset %" PRIu64 ": %s n=%" PRIu64 " slot=%" PRIu64 " boot=%" PRIu32
                " t=",
                f->offset, f->rec.kind == CCL_HEADER ? "header" : "ring  ", f->rec.counter,
                f->rec.counter % f->rec.ring_size, f->rec.boot);
        print_time(stderr, f->rec.time_ns);
        fputc('\n', stderr);
    }
    if (s->damaged)
        fprintf(stderr, "check-copy: %zu damaged record(s), the first at offset %" PRIu64 "\n",
                s->damaged, s->first_damaged);
}

int main(int argc, char **argv)
{
    struct image_info ii = { 0 };
    struct ccl_scan s;
    struct ccl_verdict v;
    bool verbose = false;
    const char *path;
    int rc;

    log_setup("check-copy", -1);
    if (argc == 3 && streq(argv[1], "-v"))
        verbose = true;
    else if (argc != 2 || argv[1][0] == '-')
        usage();
    path = argv[argc - 1];

    if (image_probe_path(path, &ii) < 0) {
        report_failure();
        return 2;
    }
    ccl_scan_init(&s);
    if (streq(ii.format, "raw"))
        rc = scan_raw(path, &s);
    else
        rc = scan_converted(path, ii.format, &s);
    image_info_release(&ii);
    if (rc < 0) {
        ccl_scan_release(&s);
        report_failure();
        return 2;
    }
    if (verbose)
        list_records(&s);
    ccl_judge(&s, &v);
    ccl_scan_release(&s);

    fputs(v.consistent ? "CONSISTENT" : "TORN", stdout);
    if (v.have_header) {
        printf(" counter=%" PRIu64 " at=", v.counter);
        print_time(stdout, v.time_ns);
        printf(" boot=%" PRIu32, v.boot);
    } else {
        fputs(" counter=- at=- boot=-", stdout);
    }
    if (v.consistent)
        printf(" ring=%" PRIu32 " records=%zu\n", v.ring_size, v.ring_records);
    else
        printf(" stale=%zu future=%zu missing=%zu duplicate=%zu damaged=%zu disorder=%zu: %s\n",
               v.stale, v.future, v.missing, v.duplicate, v.damaged, v.disorder, v.reason);
    return v.consistent ? 0 : 1;
}
