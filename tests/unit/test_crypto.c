/* test_crypto.c - MD5/SHA1/SHA256 of strings and streams, against the
 * published test vectors (RFC 1321, FIPS 180-2); RSA public-key encryption
 * decrypted again with the private key; zlib compression inflated again. */
#include "testlib.h"

#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <zlib.h>

#include "crypto.h"
#include "gz.h"
#include "stream.h"

TestSuite(digest, .timeout = 60);

struct vector {
    enum digest_algo algo;
    const char *input;
    const char *hex;
};

static const struct vector vectors[] = {
    { DIGEST_MD5, "", "d41d8cd98f00b204e9800998ecf8427e" },
    { DIGEST_MD5, "abc", "900150983cd24fb0d6963f7d28e17f72" },
    { DIGEST_MD5, "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
    { DIGEST_MD5, "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
      "57edf4a22be3c955ac49da2e2107b67a" },
    { DIGEST_SHA1, "", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
    { DIGEST_SHA1, "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
    { DIGEST_SHA1, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
    { DIGEST_SHA256, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
    { DIGEST_SHA256, "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
    { DIGEST_SHA256, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
};

/* Keeps what passes through, to check that the digest changes nothing. */
struct keep {
    struct sink s;
    struct sbuf data;
    bool closed;
};

static int keep_write(struct sink *s, const void *buf, size_t len)
{
    sbuf_add(&((struct keep *)s)->data, buf, len);
    return 0;
}

static int keep_close(struct sink *s)
{
    ((struct keep *)s)->closed = true;
    return 0;
}

static void keep_free(struct sink *s)
{
    sbuf_release(&((struct keep *)s)->data);
    free(s);
}

static struct keep *keep_new(void)
{
    struct keep *k = xcalloc(1, sizeof(*k));

    k->s.write = keep_write;
    k->s.close = keep_close;
    k->s.free = keep_free;
    sbuf_init(&k->data);
    return k;
}

Test(digest, string_vectors)
{
    for (size_t i = 0; i < ARRAY_SIZE(vectors); i++) {
        char *hex = digest_hex(vectors[i].algo, vectors[i].input, strlen(vectors[i].input));

        cr_assert_str_eq(hex, vectors[i].hex, "vector %zu", i);
        free(hex);
    }
}

/* The same vectors through a sink, one byte at a time. */
Test(digest, stream_vectors_byte_by_byte)
{
    for (size_t i = 0; i < ARRAY_SIZE(vectors); i++) {
        struct keep *k = keep_new();
        struct sink *d = digest_sink_new(&k->s, vectors[i].algo);
        const char *in = vectors[i].input;

        for (size_t j = 0; in[j]; j++)
            cr_assert_eq(sink_write(d, in + j, 1), 0);
        cr_assert_str_eq(digest_sink_hex(d), "", "no digest before close");
        cr_assert_eq(sink_close(d), 0);
        cr_assert_str_eq(digest_sink_hex(d), vectors[i].hex, "vector %zu", i);
        cr_assert(k->closed, "close must reach the next sink");
        cr_assert_str_eq(k->data.buf, in, "the data must pass unchanged");
        cr_assert_eq(d->bytes, strlen(in));
        sink_free(d);
    }
}

/* One million 'a': the long-message vectors, in uneven pieces. */
Test(digest, million_a)
{
    static const struct {
        enum digest_algo algo;
        const char *hex;
    } expect[] = {
        { DIGEST_MD5, "7707d6ae4e027c70eea2a935c2296f21" },
        { DIGEST_SHA1, "34aa973cd4c4daa4f61eeb2bdbad27316534016f" },
        { DIGEST_SHA256, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
    };
    size_t len = 1000000;
    char *a = xmalloc(len);

    memset(a, 'a', len);
    for (size_t i = 0; i < ARRAY_SIZE(expect); i++) {
        struct sink *d = digest_sink_new(null_sink_new(), expect[i].algo);
        size_t off = 0;

        for (size_t step = 1; off < len; step = step * 7 % 65521 + 1) {
            size_t n = step < len - off ? step : len - off;

            cr_assert_eq(sink_write(d, a + off, n), 0);
            off += n;
        }
        cr_assert_eq(sink_close(d), 0);
        cr_assert_str_eq(digest_sink_hex(d), expect[i].hex);
        sink_free(d);
    }
    free(a);
}

/* cp's order: the hash is of the bytes as they arrive, not as decoded. */
Test(digest, hashes_the_stream_before_decompression)
{
    static const unsigned char gz_abc[] = { 0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
                                            0x00, 0x03, 0x4b, 0x4c, 0x4a, 0x06, 0x00, 0xc2,
                                            0x41, 0x24, 0x35, 0x03, 0x00, 0x00, 0x00 };
    struct sink *head = head_sink_new(16);
    struct sink *d = digest_sink_new(unpack_sink_new(head, true), DIGEST_MD5);
    char *raw = digest_hex(DIGEST_MD5, gz_abc, sizeof(gz_abc));
    size_t len;
    const char *out;

    cr_assert_eq(sink_write(d, gz_abc, sizeof(gz_abc)), 0, "%s", fail_reason());
    cr_assert_eq(sink_close(d), 0, "%s", fail_reason());
    out = head_sink_data(head, &len);
    cr_assert_eq(len, 3);
    cr_assert(memcmp(out, "abc", 3) == 0);
    cr_assert_str_eq(digest_sink_hex(d), raw);
    cr_assert_str_neq(digest_sink_hex(d), "900150983cd24fb0d6963f7d28e17f72");
    free(raw);
    sink_free(d);
}

/* A failure behind the digest is the caller's failure. */
Test(digest, next_sink_failure_propagates)
{
    struct sink *d = digest_sink_new(unpack_sink_new(null_sink_new(), true), DIGEST_SHA1);

    cr_assert_eq(sink_write(d, "\x1f\x8b\x08\x00", 4), 0);
    cr_assert_eq(sink_close(d), -1);
    cr_assert_str_eq(fail_reason(), "the gzip data is truncated");
    sink_free(d);
}

Test(digest, hex_is_lower_case_of_the_right_length)
{
    static const size_t lens[] = { 32, 40, 64 };
    static const enum digest_algo algos[] = { DIGEST_MD5, DIGEST_SHA1, DIGEST_SHA256 };

    for (size_t i = 0; i < ARRAY_SIZE(algos); i++) {
        char *hex = digest_hex(algos[i], "\xff\x00\x7f", 3);

        cr_assert_eq(strlen(hex), lens[i]);
        cr_assert_eq(strspn(hex, "0123456789abcdef"), lens[i], "%s", hex);
        free(hex);
    }
}

/* ---- RSA: what pubkey_encrypt seals, the private key opens ---- */

/* PKCS#1 "RSA PUBLIC KEY" (what onemonitord writes) or SPKI "PUBLIC KEY". */
static char *public_pem(EVP_PKEY *key, bool pkcs1, size_t *len)
{
    OSSL_ENCODER_CTX *ec = OSSL_ENCODER_CTX_new_for_pkey(
        key, OSSL_KEYMGMT_SELECT_PUBLIC_KEY, "PEM",
        pkcs1 ? "type-specific" : "SubjectPublicKeyInfo", NULL);
    unsigned char *data = NULL;
    char *copy;

    cr_assert(ec && OSSL_ENCODER_to_data(ec, &data, len));
    OSSL_ENCODER_CTX_free(ec);
    copy = xmalloc(*len + 1);
    memcpy(copy, data, *len);
    copy[*len] = 0;
    OPENSSL_free(data);
    cr_assert(strstr(copy, pkcs1 ? "BEGIN RSA PUBLIC KEY" : "BEGIN PUBLIC KEY"), "%s", copy);
    return copy;
}

static void decrypt_blocks(EVP_PKEY *key, const struct sbuf *ct, struct sbuf *pt)
{
    size_t ks = (size_t)EVP_PKEY_get_size(key);
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(key, NULL);

    cr_assert(pc && EVP_PKEY_decrypt_init(pc) > 0 &&
              EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) > 0);
    cr_assert_eq(ct->len % ks, 0, "ciphertext of %zu bytes is not whole blocks", ct->len);
    for (size_t off = 0; off < ct->len; off += ks) {
        size_t n = ks;

        sbuf_grow(pt, ks);
        cr_assert(EVP_PKEY_decrypt(pc, (unsigned char *)pt->buf + pt->len, &n,
                                   (const unsigned char *)ct->buf + off, ks) > 0);
        sbuf_setlen(pt, pt->len + n);
    }
    EVP_PKEY_CTX_free(pc);
}

Test(digest, rsa_blocks_open_with_the_private_key)
{
    EVP_PKEY *key = EVP_RSA_gen(1024);
    struct sbuf msg = SBUF_INIT, ct = SBUF_INIT, pt = SBUF_INIT;
    struct pubkey *pk;
    size_t len;
    char *pem;

    cr_assert_not_null(key);
    /* 1000 bytes: several 117-byte blocks and a short last one */
    for (int i = 0; i < 1000; i++)
        sbuf_addch(&msg, (char)('a' + i % 26));
    for (int pkcs1 = 0; pkcs1 < 2; pkcs1++) {
        pem = public_pem(key, pkcs1, &len);
        pk = pubkey_from_pem(pem, len);
        cr_assert_not_null(pk, "%s", fail_reason());
        sbuf_reset(&ct);
        sbuf_reset(&pt);
        cr_assert_eq(pubkey_encrypt(pk, msg.buf, msg.len, &ct), 0, "%s", fail_reason());
        cr_assert_eq(ct.len, 9 * 128u);
        decrypt_blocks(key, &ct, &pt);
        cr_assert_eq(pt.len, msg.len);
        cr_assert_eq(memcmp(pt.buf, msg.buf, msg.len), 0);
        pubkey_free(pk);
        free(pem);
    }
    sbuf_release(&msg);
    sbuf_release(&ct);
    sbuf_release(&pt);
    EVP_PKEY_free(key);
}

Test(digest, pubkey_refuses_what_is_no_key)
{
    static const char junk[] = "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n";

    cr_assert_null(pubkey_from_pem(junk, sizeof(junk) - 1));
    cr_assert(strstr(fail_reason(), "not a PEM RSA public key"), "%s", fail_reason());
    fail_reset();
    cr_assert_null(pubkey_from_pem("", 0));
    fail_reset();
    pubkey_free(NULL);
}

Test(digest, zlib_compress_inflates_back)
{
    struct sbuf in = SBUF_INIT, z = SBUF_INIT;
    unsigned char *back;
    uLongf n;

    sbuf_adds(&z, "kept:");
    for (int i = 0; i < 5000; i++)
        sbuf_addf(&in, "DISK_SIZE=[ID=%d,SIZE=%d]\n", i % 7, i);
    cr_assert_eq(zlib_compress(in.buf, in.len, &z), 0, "%s", fail_reason());
    cr_assert(z.len < in.len / 4, "%zu bytes from %zu", z.len, in.len);
    cr_assert_eq(memcmp(z.buf, "kept:", 5), 0, "appends, keeps what was there");
    n = in.len;
    back = xmalloc(n);
    cr_assert_eq(uncompress(back, &n, (const Bytef *)z.buf + 5, (uLong)(z.len - 5)), Z_OK);
    cr_assert_eq(n, in.len);
    cr_assert_eq(memcmp(back, in.buf, n), 0);
    free(back);
    sbuf_release(&in);
    sbuf_release(&z);
}
