/* image.c - native header probe (qcow2 in depth, other formats by magic). */
#include "image.h"

#include "cleanup.h"
#include "log.h"

#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_DATA_FILE 0x44415441u
#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static bool has_magic(const unsigned char *b, size_t len, size_t off, const char *m, size_t ml)
{
    return len >= off + ml && memcmp(b + off, m, ml) == 0;
}

/* Formats qemu-img recognises by a fixed signature (block/<driver>.c probes). */
static const char *probe_magic(const unsigned char *b, size_t len)
{
    static const struct {
        const char *format;
        size_t off;
        const char *magic;
        size_t len;
    } sigs[] = {
        { "vmdk", 0, "KDMV", 4 },
        { "vmdk", 0, "COWD", 4 },
        { "vmdk", 0, "# Disk DescriptorFile", 21 },
        { "vhdx", 0, "vhdxfile", 8 },
        { "vpc", 0, "conectix", 8 },
        { "qed", 0, "QED\0", 4 },
        { "luks", 0, "LUKS\xba\xbe", 6 },
        { "parallels", 0, "WithoutFreeSpace", 16 },
        { "parallels", 0, "WithouFreSpacExt", 16 },
        { "vdi", 64, "\x7f\x10\xda\xbe", 4 },
        { "dmg", 0, "koly", 4 },
        { "bochs", 0, "Bochs Virtual HD Image", 22 },
    };

    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        if (has_magic(b, len, sigs[i].off, sigs[i].magic, sigs[i].len))
            return sigs[i].format;
    return NULL;
}

static int probe_qcow2(const unsigned char *b, size_t len, struct image_info *ii)
{
    uint64_t boff, incompat = 0;
    uint32_t bsize, hlen = 72;
    size_t pos;

    if (len < 72)
        return fail("the qcow2 header is truncated");
    ii->qcow2_version = be32(b + 4);
    if (ii->qcow2_version < 2 || ii->qcow2_version > 3)
        return fail("unsupported qcow2 version %u", ii->qcow2_version);
    boff = be64(b + 8);
    bsize = be32(b + 16);
    ii->cluster_bits = be32(b + 20);
    ii->virtual_size = be64(b + 24);
    ii->size_known = true;
    ii->encrypted = be32(b + 32) != 0;
    ii->nb_snapshots = be32(b + 60);
    if (ii->cluster_bits < 9 || ii->cluster_bits > 21)
        return fail("invalid qcow2 cluster size (2^%u)", ii->cluster_bits);
    if (ii->qcow2_version == 3) {
        if (len < 104)
            return fail("the qcow2 header is truncated");
        incompat = be64(b + 72);
        hlen = be32(b + 100);
        if (hlen < 104 || hlen > len)
            return fail("invalid qcow2 header length %u", hlen);
    }
    ii->dirty = incompat & QCOW2_INCOMPAT_DIRTY;
    ii->corrupt = incompat & QCOW2_INCOMPAT_CORRUPT;
    ii->external_data = incompat & QCOW2_INCOMPAT_DATA_FILE;

    if (boff) {
        if (bsize == 0 || bsize > 1023 || boff + bsize > len)
            return fail("the qcow2 backing file name is outside the header");
        ii->backing_file = xstrndup((const char *)b + boff, bsize);
    }
    /* Header extensions follow the header, 8-byte aligned records. */
    for (pos = hlen; pos + 8 <= len;) {
        uint32_t type = be32(b + pos), elen = be32(b + pos + 4);

        if (type == QCOW2_EXT_END)
            break;
        if (pos + 8 + elen > len)
            break; /* beyond what we read: nothing we need lives that far */
        if (type == QCOW2_EXT_BACKING_FORMAT && elen > 0 && elen < 64)
            ii->backing_format = xstrndup((const char *)b + pos + 8, elen);
        if (type == QCOW2_EXT_DATA_FILE)
            ii->external_data = true;
        pos += 8 + ((elen + 7) & ~7u);
    }
    ii->format = "qcow2";
    return 0;
}

int image_probe_buf(const void *buf, size_t len, uint64_t file_size, struct image_info *ii)
{
    const unsigned char *b = buf;
    const char *f;

    memset(ii, 0, sizeof(*ii));
    if (has_magic(b, len, 0, "QFI\xfb", 4)) {
        if (len >= 8 && be32(b + 4) == 1) {
            ii->format = "qcow";
            if (len >= 32) {
                ii->virtual_size = be64(b + 24);
                ii->size_known = true;
            }
            return 0;
        }
        return probe_qcow2(b, len, ii);
    }
    f = probe_magic(b, len);
    if (f) {
        ii->format = f;
        return 0;
    }
    ii->format = "raw";
    ii->virtual_size = file_size;
    ii->size_known = file_size > 0 || len == 0;
    return 0;
}

int image_probe_path(const char *path, struct image_info *ii)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    _cleanup_free_ unsigned char *buf = NULL;
    struct stat st;
    size_t got = 0;

    memset(ii, 0, sizeof(*ii));
    if (fd < 0 || fstat(fd, &st) < 0)
        return fail_errno("cannot open image '%s'", path);
    buf = xmalloc(IMAGE_PROBE_BYTES);
    while (got < IMAGE_PROBE_BYTES) {
        ssize_t n = pread(fd, buf + got, IMAGE_PROBE_BYTES - got, (off_t)got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno("cannot read image '%s'", path);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (image_probe_buf(buf, got, (uint64_t)st.st_size, ii) < 0)
        return fail_context("'%s'", path);
    if (streq(ii->format, "raw"))
        ii->size_known = true; /* a raw file's size is its length, even 0 */
    return 0;
}

void image_info_release(struct image_info *ii)
{
    free(ii->backing_file);
    free(ii->backing_format);
    ii->backing_file = NULL;
    ii->backing_format = NULL;
}

bool image_is_standalone(const struct image_info *ii)
{
    if (streq(ii->format, "raw"))
        return true;
    return streq(ii->format, "qcow2") && !ii->backing_file && !ii->external_data;
}
