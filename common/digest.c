/* digest.c - MD5/SHA1/SHA256 over a stream, with OpenSSL's EVP; see
 * stream.h. */
#include "stream.h"

#include <openssl/evp.h>

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
