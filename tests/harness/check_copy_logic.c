/*
 * check_copy_logic.c - encoding of the writer guest's records and the
 * one-instant check (contract in check_copy_logic.h).
 *
 * Only libc: guest.sh compiles this file into the guest's writer program,
 * which must not need libqcow2c.
 */
#include "util.h"

#include <inttypes.h>

#include "check_copy_logic.h"

/* Layout of an encoded record (little-endian):
 *   0 magic "QC2C-REC"   8 version   12 kind   16 ring_size   20 boot
 *  24 counter           32 time_ns  40 reserved (0)           44 CRC-32 of 0..43 */
#define OFF_VERSION 8
#define OFF_KIND 12
#define OFF_RING 16
#define OFF_BOOT 20
#define OFF_COUNTER 24
#define OFF_TIME 32
#define OFF_RESERVED 40
#define OFF_CRC 44

uint32_t ccl_crc32(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t crc = 0xffffffffu;

    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;

    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void ccl_encode(const struct ccl_record *r, unsigned char out[CCL_RECORD_LEN])
{
    memcpy(out, CCL_MAGIC, 8);
    put32(out + OFF_VERSION, CCL_VERSION);
    put32(out + OFF_KIND, (uint32_t)r->kind);
    put32(out + OFF_RING, r->ring_size);
    put32(out + OFF_BOOT, r->boot);
    put64(out + OFF_COUNTER, r->counter);
    put64(out + OFF_TIME, r->time_ns);
    put32(out + OFF_RESERVED, 0);
    put32(out + OFF_CRC, ccl_crc32(out, OFF_CRC));
}

int ccl_decode(const unsigned char *buf, size_t len, struct ccl_record *r)
{
    uint32_t kind, ring;

    if (len < CCL_RECORD_LEN || memcmp(buf, CCL_MAGIC, 8) != 0)
        return 0;
    if (get32(buf + OFF_CRC) != ccl_crc32(buf, OFF_CRC) ||
        get32(buf + OFF_VERSION) != CCL_VERSION || get32(buf + OFF_RESERVED) != 0)
        return -1;
    kind = get32(buf + OFF_KIND);
    ring = get32(buf + OFF_RING);
    if ((kind != CCL_RING && kind != CCL_HEADER) || ring == 0 || ring > CCL_MAX_RING)
        return -1;
    r->kind = (enum ccl_kind)kind;
    r->ring_size = ring;
    r->boot = get32(buf + OFF_BOOT);
    r->counter = get64(buf + OFF_COUNTER);
    r->time_ns = get64(buf + OFF_TIME);
    /* Only the initial header has counter 0: ring records start at 1. */
    if (r->kind == CCL_RING && r->counter == 0)
        return -1;
    return 1;
}

void ccl_scan_init(struct ccl_scan *s)
{
    memset(s, 0, sizeof(*s));
}

void ccl_scan_release(struct ccl_scan *s)
{
    free(s->found);
    ccl_scan_init(s);
}

static void scan_add(struct ccl_scan *s, uint64_t offset, const struct ccl_record *r)
{
    if (s->overflow)
        return;
    if (s->n_found == s->alloc) {
        size_t want = s->alloc ? s->alloc * 2 : 256;
        struct ccl_found *p;

        if (s->n_found >= CCL_MAX_RECORDS || !(p = realloc(s->found, want * sizeof(*s->found)))) {
            s->overflow = true;
            return;
        }
        s->found = p;
        s->alloc = want;
    }
    s->found[s->n_found].offset = offset;
    s->found[s->n_found].rec = *r;
    s->n_found++;
}

void ccl_scan_feed(struct ccl_scan *s, uint64_t offset, const unsigned char *buf, size_t len)
{
    size_t skip = (size_t)((CCL_SECTOR - offset % CCL_SECTOR) % CCL_SECTOR);

    for (size_t i = skip; i + CCL_SECTOR <= len; i += CCL_SECTOR) {
        struct ccl_record r;
        int rc;

        /* Cheap first test: almost every sector of an image is not a record. */
        if (buf[i] != CCL_MAGIC[0])
            continue;
        rc = ccl_decode(buf + i, CCL_SECTOR, &r);
        if (rc > 0) {
            scan_add(s, offset + i, &r);
        } else if (rc < 0) {
            if (!s->damaged)
                s->first_damaged = offset + i;
            s->damaged++;
        }
    }
}

static void PRINTF_LIKE(2, 3) problem(struct ccl_verdict *v, const char *fmt, ...)
{
    va_list ap;

    if (v->reason[0])
        return;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
    va_end(ap);
}

/* The newest counter m <= h with m = slot (mod n), 0 when there is none. */
static uint64_t expected_in_slot(uint64_t h, uint32_t n, uint32_t slot)
{
    uint64_t m;

    if (h < slot)
        return 0;
    m = h - (h - slot) % n;
    return m;
}

static int by_counter(const void *a, const void *b)
{
    const struct ccl_found *x = *(const struct ccl_found *const *)a;
    const struct ccl_found *y = *(const struct ccl_found *const *)b;

    if (x->rec.counter != y->rec.counter)
        return x->rec.counter < y->rec.counter ? -1 : 1;
    return x->rec.kind < y->rec.kind ? -1 : x->rec.kind > y->rec.kind;
}

/* Along the counter, the boot never goes back and, within a boot, neither
 * does the guest's clock. */
static void check_order(const struct ccl_scan *s, struct ccl_verdict *v)
{
    const struct ccl_found **order;
    size_t n = 0;

    if (!s->n_found)
        return;
    order = malloc(s->n_found * sizeof(*order));
    if (!order) {
        v->disorder++;
        problem(v, "out of memory while checking the record order");
        return;
    }
    for (size_t i = 0; i < s->n_found; i++)
        order[n++] = &s->found[i];
    qsort(order, n, sizeof(*order), by_counter);
    for (size_t i = 1; i < n; i++) {
        const struct ccl_record *a = &order[i - 1]->rec, *b = &order[i]->rec;

        if (a->counter == b->counter)
            continue;
        if (b->boot < a->boot || (b->boot == a->boot && b->time_ns < a->time_ns)) {
            v->disorder++;
            problem(v,
                    "record %" PRIu64 " (boot %" PRIu32 ", t=%" PRIu64 " ns) is older than "
                    "record %" PRIu64 " (boot %" PRIu32 ", t=%" PRIu64 " ns)",
                    b->counter, b->boot, b->time_ns, a->counter, a->boot, a->time_ns);
        }
    }
    free(order);
}

void ccl_judge(const struct ccl_scan *s, struct ccl_verdict *v)
{
    const struct ccl_found *hdr = NULL;
    const struct ccl_found **slot;
    uint64_t h;
    uint32_t n;

    memset(v, 0, sizeof(*v));
    for (size_t i = 0; i < s->n_found; i++) {
        const struct ccl_found *f = &s->found[i];

        if (f->rec.kind == CCL_RING) {
            v->ring_records++;
        } else if (!hdr) {
            hdr = f;
        } else {
            v->duplicate++;
            problem(v,
                    "two header records (n=%" PRIu64 " at offset %" PRIu64 ", n=%" PRIu64
                    " at offset %" PRIu64 ")",
                    hdr->rec.counter, hdr->offset, f->rec.counter, f->offset);
        }
    }
    if (s->damaged) {
        v->damaged += s->damaged;
        problem(v, "%zu damaged record(s), the first at offset %" PRIu64, s->damaged,
                s->first_damaged);
    }
    if (s->overflow)
        problem(v, "more than %d records (or no memory to hold them): not a writer disk",
                CCL_MAX_RECORDS);
    if (!hdr) {
        problem(v, "no header record: not a writer guest's disk, or its header is lost");
        return;
    }
    v->have_header = true;
    h = v->counter = hdr->rec.counter;
    n = v->ring_size = hdr->rec.ring_size;
    v->time_ns = hdr->rec.time_ns;
    v->boot = hdr->rec.boot;

    slot = calloc(n, sizeof(*slot));
    if (!slot) {
        problem(v, "out of memory for %" PRIu32 " slots", n);
        return;
    }
    for (size_t i = 0; i < s->n_found; i++) {
        const struct ccl_found *f = &s->found[i];
        uint32_t k;

        if (f->rec.kind != CCL_RING)
            continue;
        if (f->rec.ring_size != n) {
            v->damaged++;
            problem(v,
                    "the record at offset %" PRIu64 " belongs to a ring of %" PRIu32
                    " slots, the header's has %" PRIu32,
                    f->offset, f->rec.ring_size, n);
            continue;
        }
        k = (uint32_t)(f->rec.counter % n);
        if (slot[k]) {
            v->duplicate++;
            problem(v,
                    "slot %" PRIu32 " twice: n=%" PRIu64 " at offset %" PRIu64 " and n=%" PRIu64
                    " at offset %" PRIu64,
                    k, slot[k]->rec.counter, slot[k]->offset, f->rec.counter, f->offset);
            continue;
        }
        slot[k] = f;
    }

    for (uint32_t k = 0; k < n; k++) {
        uint64_t want = expected_in_slot(h, n, k);
        uint64_t got = slot[k] ? slot[k]->rec.counter : 0;
        bool in_flight = (h + 1) % n == k;

        if (got == want || (in_flight && got == h + 1))
            continue;
        if (got > h) {
            v->future++;
            problem(v,
                    "slot %" PRIu32 " holds n=%" PRIu64 ", newer than the header's n=%" PRIu64
                    " allows: written after the header was copied",
                    k, got, h);
        } else if (!got) {
            v->missing++;
            problem(v,
                    "slot %" PRIu32 " holds no record, the header's n=%" PRIu64
                    " says it holds n=%" PRIu64,
                    k, h, want);
        } else {
            v->stale++;
            problem(v,
                    "slot %" PRIu32 " holds n=%" PRIu64 ", the header's n=%" PRIu64
                    " says n=%" PRIu64 ": copied before the guest wrote it",
                    k, got, h, want);
        }
    }
    /* The header's own slot holds the same record, not one of another boot. */
    if (h) {
        const struct ccl_found *f = slot[h % n];

        if (f && f->rec.counter == h &&
            (f->rec.time_ns != hdr->rec.time_ns || f->rec.boot != hdr->rec.boot)) {
            v->stale++;
            problem(v,
                    "slot %" PRIu64 " holds n=%" PRIu64 " of boot %" PRIu32 " (t=%" PRIu64
                    " ns), the header's is of boot %" PRIu32 " (t=%" PRIu64 " ns)",
                    h % n, h, f->rec.boot, f->rec.time_ns, hdr->rec.boot, hdr->rec.time_ns);
        }
    }
    free(slot);
    check_order(s, v);
    v->consistent = !v->reason[0];
}
