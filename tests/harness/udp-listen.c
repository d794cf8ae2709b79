/*
 * udp-listen - plays monitord's UDP listener for the tests of TM `monitor`.
 *
 *   udp-listen --portfile FILE --out DIR [--prikey KEY.pem] [--idle-ms MS]
 *              [--timeout S]
 *   udp-listen --genkey PUB.pem PRI.pem
 *
 * Listens on 127.0.0.1, a free UDP port written to FILE, and decodes every
 * datagram as monitord does (UDPStream::read_line, Message::parse_from,
 * MonitorDriverProtocol::_monitor_vm; protocol §5.6):
 *   - a datagram of 64 KiB or more is dropped (monitord's buffer);
 *   - "TYPE STATUS OID TIMESTAMP PAYLOAD\n": words split on blanks, PAYLOAD
 *     the rest of the line, base64 (EVP_DecodeBlock, as ssl_util), zlib
 *     inflate, then, with --prikey, RSA PKCS#1 v1.5 decryption in blocks of
 *     the key size (monitord keeps the plain text when that fails);
 *   - every VM=[ID=n, MONITOR="b64"] of the payload: MONITOR base64-decoded.
 * Writes into DIR:
 *   index        one line per datagram:
 *                "<n> <bytes> <TYPE> <STATUS> <OID> <TIMESTAMP> ok|<error>"
 *   payload.<n>  the decoded payload of datagram n
 *   vms          "<vm id> <line>" for every line of every VM's MONITOR, in
 *                arrival order
 * Exits 0 after `--idle-ms` (default 500) without a datagram once one has
 * come, or after `--timeout` seconds (default 60) in any case, or on SIGTERM.
 *
 * --genkey writes a 2048-bit RSA key pair: PUB.pem as onemonitord's PUBKEY
 * ("BEGIN RSA PUBLIC KEY", PKCS#1) and PRI.pem as its PRIKEY.
 */
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <zlib.h>

#include "cleanup.h"
#include "log.h"
#include "num.h"
#include "run.h"
#include "sbuf.h"

#define BUF_SIZE 65536

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static NORETURN void usage(void)
{
    fputs("usage: udp-listen --portfile FILE --out DIR [--prikey KEY] [--idle-ms MS] "
          "[--timeout S]\n"
          "       udp-listen --genkey PUB.pem PRI.pem\n",
          stderr);
    exit(2);
}

/* ssl_util::base64_decode: EVP_DecodeBlock, minus the padding. */
static int b64_decode_like_monitord(const char *in, size_t len, struct sbuf *out)
{
    int n;
    size_t pad = 0;

    sbuf_reset(out);
    if (!len)
        return -1;
    sbuf_grow(out, 3 * len / 4 + 1);
    n = EVP_DecodeBlock((unsigned char *)out->buf, (const unsigned char *)in, (int)len);
    if (n <= 0)
        return -1;
    while (len && in[len - 1] == '=') {
        len--;
        if (++pad > 2)
            return -1;
    }
    sbuf_setlen(out, (size_t)n - pad);
    return 0;
}

static int inflate_all(const struct sbuf *in, struct sbuf *out)
{
    z_stream zs = { 0 };
    unsigned char buf[16384];
    int rc;

    sbuf_reset(out);
    if (in->len <= 2 || inflateInit(&zs) != Z_OK)
        return -1;
    zs.next_in = (unsigned char *)in->buf;
    zs.avail_in = (uInt)in->len;
    do {
        zs.next_out = buf;
        zs.avail_out = sizeof(buf);
        rc = inflate(&zs, Z_FINISH);
        if ((rc != Z_STREAM_END && rc != Z_OK && rc != Z_BUF_ERROR) ||
            (rc == Z_BUF_ERROR && zs.avail_out == sizeof(buf))) {
            inflateEnd(&zs);
            return -1;
        }
        sbuf_add(out, buf, sizeof(buf) - zs.avail_out);
    } while (rc != Z_STREAM_END);
    inflateEnd(&zs);
    return 0;
}

/* ssl_util::rsa_private_decrypt. */
static int rsa_decrypt(EVP_PKEY *key, const struct sbuf *in, struct sbuf *out)
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(key, NULL);
    size_t ksize = (size_t)EVP_PKEY_get_size(key);
    int rc = -1;

    sbuf_reset(out);
    if (!pc || EVP_PKEY_decrypt_init(pc) < 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) < 1)
        goto done;
    for (size_t off = 0; off < in->len; off += ksize) {
        size_t step = in->len - off < ksize ? in->len - off : ksize;
        size_t olen = ksize;

        sbuf_grow(out, ksize);
        if (EVP_PKEY_decrypt(pc, (unsigned char *)out->buf + out->len, &olen,
                             (const unsigned char *)in->buf + off, step) < 1)
            goto done;
        sbuf_setlen(out, out->len + olen);
    }
    rc = 0;
done:
    EVP_PKEY_CTX_free(pc);
    return rc;
}

/* Every VM=[ ... ID=n ... MONITOR="b64" ... ] of the payload into `vms`. */
static void write_vms(const char *payload, FILE *vms)
{
    const char *p = payload;
    struct sbuf mon = SBUF_INIT;

    while ((p = strstr(p, "VM=["))) {
        const char *end = strchr(p, ']');
        const char *id = strstr(p, "ID="), *m = strstr(p, "MONITOR=\"");
        const char *q;

        if (!end || !id || !m || id > end || m > end) {
            fprintf(vms, "? unparsable: %.60s\n", p);
            p += 4;
            continue;
        }
        m += 9;
        q = strchr(m, '"');
        if (!q || b64_decode_like_monitord(m, (size_t)(q - m), &mon) < 0) {
            fprintf(vms, "? bad MONITOR: %.60s\n", p);
        } else {
            long long vmid = strtoll(id + 3, NULL, 10);
            char *save = NULL;

            for (char *l = strtok_r(mon.buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                fprintf(vms, "%lld %s\n", vmid, l);
        }
        p = end + 1;
    }
    sbuf_release(&mon);
}

static void handle(const char *buf, size_t len, unsigned n, const char *out, EVP_PKEY *key,
                   FILE *index, FILE *vms)
{
    char type[64] = "", status[64] = "", *path;
    long long oid = 0, ts = 0;
    int used = 0;
    struct sbuf line = SBUF_INIT, raw = SBUF_INIT, plain = SBUF_INIT, dec = SBUF_INIT;
    const char *err = NULL;
    const char *nl;

    fprintf(index, "%u %zu ", n, len);
    if (len >= BUF_SIZE) {
        fprintf(index, "- - - - dropped: 64 KiB or more\n");
        return;
    }
    nl = memchr(buf, '\n', len);
    sbuf_add(&line, buf, nl ? (size_t)(nl - buf) : len);
    if (sscanf(line.buf, "%63s %63s %lld %lld %n", type, status, &oid, &ts, &used) < 4) {
        fprintf(index, "- - - - unparsable header\n");
        goto out;
    }
    fprintf(index, "%s %s %lld %lld ", type, status, oid, ts);
    if (b64_decode_like_monitord(line.buf + used, line.len - (size_t)used, &raw) < 0)
        err = "bad base64";
    else if (inflate_all(&raw, &plain) < 0)
        err = "bad zlib data";
    else if (key && rsa_decrypt(key, &plain, &dec) == 0) {
        sbuf_reset(&plain);
        sbuf_add(&plain, dec.buf, dec.len);
    } else if (key) {
        err = "not encrypted with the key";
    }
    fprintf(index, "%s\n", err ? err : "ok");
    if (!err) {
        FILE *f;

        path = xasprintf("%s/payload.%u", out, n);
        f = fopen(path, "w");
        if (f) {
            fwrite(plain.buf, 1, plain.len, f);
            fclose(f);
        }
        free(path);
        write_vms(plain.buf, vms);
    }
out:
    fflush(index);
    fflush(vms);
    sbuf_release(&line);
    sbuf_release(&raw);
    sbuf_release(&plain);
    sbuf_release(&dec);
}

static int genkey(const char *pub, const char *pri)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    OSSL_ENCODER_CTX *ec;
    FILE *f;
    int rc = 1;

    if (!key)
        return 1;
    f = fopen(pub, "w");
    ec = OSSL_ENCODER_CTX_new_for_pkey(key, EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific", NULL);
    if (f && ec && OSSL_ENCODER_to_fp(ec, f)) {
        fclose(f);
        f = fopen(pri, "w");
        if (f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL))
            rc = 0;
    }
    if (f)
        fclose(f);
    OSSL_ENCODER_CTX_free(ec);
    EVP_PKEY_free(key);
    return rc;
}

int main(int argc, char **argv)
{
    const char *portfile = NULL, *out = NULL, *prikey = NULL;
    uint64_t idle_ms = 500, timeout_s = 60;
    EVP_PKEY *key = NULL;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t salen = sizeof(sa);
    _cleanup_close_ int fd = -1;
    FILE *index, *vms, *pf;
    char *path;
    unsigned n = 0;
    long long start, last = 0;
    static char buf[BUF_SIZE];

    log_setup("udp-listen", -1);
    if (argc == 4 && streq(argv[1], "--genkey"))
        return genkey(argv[2], argv[3]);
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (streq(argv[i], "--portfile"))
            portfile = argv[++i];
        else if (streq(argv[i], "--out"))
            out = argv[++i];
        else if (streq(argv[i], "--prikey"))
            prikey = argv[++i];
        else if (streq(argv[i], "--idle-ms")) {
            if (parse_u64(argv[++i], 3600000, &idle_ms) < 0)
                usage();
        } else if (streq(argv[i], "--timeout")) {
            if (parse_u64(argv[++i], 3600, &timeout_s) < 0)
                usage();
        } else
            usage();
    }
    if (!portfile || !out)
        usage();
    if (prikey) {
        FILE *kf = fopen(prikey, "r");

        if (kf)
            key = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
        if (kf)
            fclose(kf);
        if (!key)
            die("cannot read the private key %s", prikey);
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &salen) < 0)
        die("cannot listen on a UDP port: %s", strerror(errno));
    {
        int sz = 8 << 20;

        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    path = xasprintf("%s/index", out);
    index = fopen(path, "w");
    free(path);
    path = xasprintf("%s/vms", out);
    vms = fopen(path, "w");
    free(path);
    if (!index || !vms)
        die("cannot write into %s", out);
    /* The port file appears whole, once the socket is bound. */
    path = xasprintf("%s.tmp", portfile);
    pf = fopen(path, "w");
    if (!pf || fprintf(pf, "%u\n", ntohs(sa.sin_port)) < 0 || fclose(pf) != 0 ||
        rename(path, portfile) < 0)
        die("cannot write %s", portfile);
    free(path);
    start = monotonic_ms();
    while (!stop) {
        long long now = monotonic_ms(), wait;
        struct pollfd p = { .fd = fd, .events = POLLIN };

        if (now - start >= (long long)timeout_s * 1000)
            break;
        if (last && now - last >= (long long)idle_ms)
            break;
        wait = (long long)timeout_s * 1000 - (now - start);
        if (last && (long long)idle_ms - (now - last) < wait)
            wait = (long long)idle_ms - (now - last);
        if (poll(&p, 1, (int)(wait > 0 ? wait : 0)) <= 0)
            continue;
        ssize_t r = recv(fd, buf, sizeof(buf), 0);

        if (r < 0)
            continue;
        handle(buf, (size_t)r, ++n, out, key, index, vms);
        last = monotonic_ms();
    }
    fclose(index);
    fclose(vms);
    EVP_PKEY_free(key);
    return 0;
}
