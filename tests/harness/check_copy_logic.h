/*
 * check_copy_logic.h - the record stream of the writer guest and the check
 * that a copy of its disk was taken at one instant.
 *
 * The writer guest (tests/lib/guest.sh) keeps a ring of N record slots and
 * one header on its disk. For n = 1, 2, 3, ... it writes record n into ring
 * slot n mod N, waits until that write is on the disk (O_DIRECT | O_DSYNC),
 * then writes record n into the header and waits again. A record carries its
 * counter n, N, the guest's CLOCK_MONOTONIC time and the writer's boot
 * number, protected by a CRC. So the disk, at any instant, holds a header h
 * and, in every slot s, the newest record m <= h with m = s (mod N) (none
 * when m <= 0), except that slot (h + 1) mod N may already hold h + 1 (the
 * record in flight). A copy taken at one instant (crash-consistent) passes
 * exactly that test; a copy read while the guest wrote shows a slot older
 * than the header allows (read before its write) or newer (read after the
 * header), which is what `check-copy` reports as TORN.
 *
 * Records sit at the start of a 512-byte sector and are found by scanning,
 * wherever the guest's file system put the ring file: the check needs no
 * layout. Everything here is plain libc so that the guest's writer program
 * is built from the same encoder (guest.sh compiles it with this file).
 *
 *     struct ccl_scan s;
 *     ccl_scan_init(&s);
 *     ccl_scan_feed(&s, offset, buf, len);   // every data extent of the image
 *     struct ccl_verdict v;
 *     ccl_judge(&s, &v);                     // v.consistent, v.counter, v.reason
 *     ccl_scan_release(&s);
 */
#ifndef QCOW2C_CHECK_COPY_LOGIC_H
#define QCOW2C_CHECK_COPY_LOGIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of an encoded record; the writer pads each record to a 4 KiB block
 * (its O_DIRECT unit), the scan looks at every 512-byte boundary. */
#define CCL_RECORD_LEN 48
#define CCL_BLOCK 4096
#define CCL_SECTOR 512
#define CCL_MAGIC "QC2C-REC"
#define CCL_VERSION 1
#define CCL_MAX_RING 65536
/* A sound image holds N + 1 records; more than this is not a writer disk. */
#define CCL_MAX_RECORDS (4 * CCL_MAX_RING)

enum ccl_kind {
    CCL_RING = 1,
    CCL_HEADER = 2,
};

struct ccl_record {
    enum ccl_kind kind;
    uint32_t ring_size; /* N, 1..CCL_MAX_RING */
    uint32_t boot;      /* writer start number; 0 = made by `writer --init` */
    uint64_t counter;   /* n; 0 only in the initial header */
    uint64_t time_ns;   /* guest CLOCK_MONOTONIC when record n was made */
};

/* Encodes into CCL_RECORD_LEN bytes (little-endian, CRC-32 at the end). */
void ccl_encode(const struct ccl_record *r, unsigned char out[CCL_RECORD_LEN]);
/* 1: a record, decoded into *r; 0: no record here (no magic); -1: the magic
 * but a bad CRC, version or field (a damaged record). */
int ccl_decode(const unsigned char *buf, size_t len, struct ccl_record *r);
/* CRC-32 (IEEE 802.3, as zlib's crc32) of len bytes. */
uint32_t ccl_crc32(const void *buf, size_t len);

struct ccl_found {
    uint64_t offset; /* byte offset in the image */
    struct ccl_record rec;
};

struct ccl_scan {
    struct ccl_found *found;
    size_t n_found, alloc;
    size_t damaged;         /* magic with a bad CRC or field */
    uint64_t first_damaged; /* its offset */
    bool overflow;          /* more than CCL_MAX_RECORDS records, or no memory */
};

void ccl_scan_init(struct ccl_scan *s);
/* Looks for records in `len` bytes of the image that start at byte `offset`;
 * only 512-byte sectors wholly inside [offset, offset + len) that start on a
 * multiple of 512 are examined, so feed extents aligned to 512 bytes. */
void ccl_scan_feed(struct ccl_scan *s, uint64_t offset, const unsigned char *buf, size_t len);
void ccl_scan_release(struct ccl_scan *s);

struct ccl_verdict {
    bool consistent;
    bool have_header;
    uint64_t counter;    /* the header's n */
    uint64_t time_ns;    /* the header's guest time */
    uint32_t boot;       /* the header's boot */
    uint32_t ring_size;  /* the header's N */
    size_t ring_records; /* ring records found */
    /* what makes a copy torn (0 in a consistent one) */
    size_t stale;     /* a slot older than the header allows */
    size_t future;    /* a slot newer than header + 1 */
    size_t missing;   /* a slot that should hold a record and holds none */
    size_t duplicate; /* two records for one slot, or two headers */
    size_t damaged;   /* bad CRC / foreign ring size */
    size_t disorder;  /* guest time going backwards along the counter */
    char reason[256]; /* the first problem, or "" */
};

/* Applies the one-instant rules of the top comment to what was scanned. */
void ccl_judge(const struct ccl_scan *s, struct ccl_verdict *v);

#endif
