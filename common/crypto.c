/* crypto.c - everything qcow2c asks of OpenSSL: MD5/SHA1/SHA256 over a
 * stream (stream.h) for DS cp's checksums, and RSA public-key encryption
 * (crypto.h) for the messages the TM monitor sends to monitord. */
#include "crypto.h"
#include "stream.h"

#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "log.h"

struct digest_sink {
    struct sink s;
    struct sink *next;
    EVP_MD_CTX *ctx;
    const char *algo_name;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
};

static const EVP_MD *digest_md(enum digest_algo algo, const char **name)
{
    switch (algo) {
    case DIGEST_MD5:
        *name = "md5";
        return EVP_md5();
    case DIGEST_SHA1:
        *name = "sha1";
        return EVP_sha1();
    case DIGEST_SHA256:
        *name = "sha256";
        return EVP_sha256();
    }
    die("unknown digest algorithm %d", (int)algo);
}

static void to_hex(char *out, const unsigned char *md, unsigned len)
{
    static const char digits[] = "0123456789abcdef";

    for (unsigned i = 0; i < len; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[2 * len] = '\0';
}

/* The context cannot be made or started only when OpenSSL itself is broken
 * (no memory, a FIPS provider refusing MD5): nothing a caller could handle. */
static EVP_MD_CTX *digest_start(enum digest_algo algo, const char **name)
{
    const EVP_MD *md = digest_md(algo, name);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (!ctx || !EVP_DigestInit_ex(ctx, md, NULL))
        die("OpenSSL cannot compute %s digests", *name);
    return ctx;
}

static int digest_finish(EVP_MD_CTX *ctx, const char *name, char *hex)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;

    if (!EVP_DigestFinal_ex(ctx, md, &len))
        return fail("cannot compute the %s digest", name);
    to_hex(hex, md, len);
    return 0;
}

static int digest_sink_write(struct sink *s, const void *buf, size_t len)
{
    struct digest_sink *d = (struct digest_sink *)s;

    if (!EVP_DigestUpdate(d->ctx, buf, len))
        return fail("cannot compute the %s digest", d->algo_name);
    return sink_write(d->next, buf, len);
}

static int digest_sink_close(struct sink *s)
{
    struct digest_sink *d = (struct digest_sink *)s;

    if (digest_finish(d->ctx, d->algo_name, d->hex) < 0)
        return -1;
    return sink_close(d->next);
}

static void digest_sink_free(struct sink *s)
{
    struct digest_sink *d = (struct digest_sink *)s;

    sink_free(d->next);
    EVP_MD_CTX_free(d->ctx);
    free(d);
}

struct sink *digest_sink_new(struct sink *next, enum digest_algo algo)
{
    struct digest_sink *d = xcalloc(1, sizeof(*d));

    d->s.write = digest_sink_write;
    d->s.close = digest_sink_close;
    d->s.free = digest_sink_free;
    d->next = next;
    d->ctx = digest_start(algo, &d->algo_name);
    return &d->s;
}

const char *digest_sink_hex(struct sink *s)
{
    return ((struct digest_sink *)s)->hex;
}

char *digest_hex(enum digest_algo algo, const void *data, size_t len)
{
    const char *name;
    EVP_MD_CTX *ctx = digest_start(algo, &name);
    char hex[2 * EVP_MAX_MD_SIZE + 1];

    if (!EVP_DigestUpdate(ctx, data, len) || digest_finish(ctx, name, hex) < 0)
        die("cannot compute the %s digest", name);
    EVP_MD_CTX_free(ctx);
    return xstrdup(hex);
}

/* ---- RSA public keys ---- */

struct pubkey {
    EVP_PKEY *key;
};

struct pubkey *pubkey_from_pem(const char *pem, size_t len)
{
    struct pubkey *k;
    EVP_PKEY *key = NULL;
    OSSL_DECODER_CTX *dctx;
    const unsigned char *p = (const unsigned char *)pem;

    /* "RSA PUBLIC KEY" (PKCS#1, what onemonitord generates) or "PUBLIC KEY". */
    dctx = OSSL_DECODER_CTX_new_for_pkey(&key, "PEM", NULL, "RSA", EVP_PKEY_PUBLIC_KEY, NULL,
                                         NULL);
    if (!dctx || !OSSL_DECODER_from_data(dctx, &p, &len) || !key) {
        OSSL_DECODER_CTX_free(dctx);
        EVP_PKEY_free(key);
        fail("not a PEM RSA public key");
        return NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    k = xmalloc(sizeof(*k));
    k->key = key;
    return k;
}

void pubkey_free(struct pubkey *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->key);
    free(k);
}

int pubkey_encrypt(const struct pubkey *k, const void *in, size_t len, struct sbuf *out)
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(k->key, NULL);
    size_t ksize = (size_t)EVP_PKEY_get_size(k->key);
    int rc = -1;

    if (!pc || ksize <= 11 || EVP_PKEY_encrypt_init(pc) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) <= 0)
        goto out;
    /* PKCS#1 v1.5 padding takes 11 bytes of each key-sized block. */
    for (size_t off = 0; off < len; off += ksize - 11) {
        size_t n = len - off < ksize - 11 ? len - off : ksize - 11;
        size_t olen = ksize;

        sbuf_grow(out, ksize);
        if (EVP_PKEY_encrypt(pc, (unsigned char *)out->buf + out->len, &olen,
                             (const unsigned char *)in + off, n) <= 0)
            goto out;
        sbuf_setlen(out, out->len + olen);
    }
    rc = 0;
out:
    EVP_PKEY_CTX_free(pc);
    if (rc < 0)
        fail("RSA encryption failed");
    return rc;
}
