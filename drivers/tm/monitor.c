/*
 * monitor DS_ID  (stdin: base64 DS_DRIVER_ACTION_DATA: the SYSTEM datastore,
 *                 DATASTORE_LOCATION, MONITOR_VM_DISKS)
 *
 * Not a transfer: oned's datastore driver runs tm/<TM_MAD>/monitor for a
 * shared system datastore every MONITORING_INTERVAL_DATASTORE (protocol
 * §5.6). Runs on the front-end, on its mount of the datastore; starts no
 * process at all.
 *
 * stdout (the driver base64-encodes it for oned, so three lines are fine):
 *   USED_MB=<n> FREE_MB=<n> TOTAL_MB=<n> of DATASTORE_LOCATION/<DS_ID>,
 *   statvfs(2) rounded up to MB as `df -B1M` does. The directory is made
 *   when missing, as stock does: a new system datastore must report its
 *   space before its first VM, or the scheduler never picks it.
 *
 * With MONITOR_VM_DISKS=1, also the size of every VM disk, sent to monitord
 * as stock qcow2/monitor sends it (send_to_monitor, scripts_common.sh):
 *   one UDP datagram "MONITOR_VM SUCCESS -1 0 <base64(zlib(payload))>\n"
 *   to NETWORK/MONITOR_ADDRESS ("auto": 127.0.0.1) : NETWORK/PORT of
 *   $ONE_LOCATION/etc/monitord.conf, or /etc/one/monitord.conf without
 *   ONE_LOCATION; no file, no message (stock: the same);
 *   payload: one line per VM directory (numeric name) that has a disk,
 *     VM=[ID=<vm>, MONITOR="<base64 of its lines>"]
 *   with, for every disk.N of the directory and every numeric file K of
 *   disk.N.snap/ (the active one included, as stock reports it),
 *     DISK_SIZE=[ID=N,SIZE=<MB>]
 *     SNAPSHOT_SIZE=[ID=K,DISK_ID=N,SIZE=<MB>]
 *   sizes as `du -mL`: the space allocated to the file a link resolves to,
 *   rounded up to MB. monitord (MonitorDriverProtocol::_monitor_vm) parses
 *   both levels as templates and merges them into each VM's MONITORING.
 * Differences from stock: real newlines between a VM's attributes (stock
 * sends a literal "\n", which monitord's template lexer skips, turning
 * SNAPSHOT_SIZE into NSNAPSHOT_SIZE); snapshot ids of any length (stock:
 * one digit); a VM without any readable disk is left out (stock sends an
 * empty MONITOR); a payload too large for one datagram (monitord reads at
 * most 64 KiB) is split by VM into several messages (stock's single nc
 * datagram is lost). With NETWORK/PUBKEY set, the payload is encrypted as
 * monitord's own Ruby client does (RSA PKCS#1 v1.5 over blocks of key size
 * - 11 bytes, before compression); a PUBKEY that cannot be read or parsed
 * gives a WARN line and an unencrypted message, as stock (monitord accepts
 * unencrypted messages). Failures of this part are WARN lines only: the
 * action's result is the space, as stock's exit status is.
 *
 * Refused (one line): a datastore that is not a system datastore, a message
 * for another datastore than DS_ID, a missing or unusable DATASTORE_LOCATION,
 * a BRIDGE_LIST (qcow2c reads the datastore on the front-end; stock runs df
 * and du on a bridge host). Only reads (besides making the missing
 * datastore directory), so it runs safely beside any action, and again.
 */
#include "tm_actions.h"

#include <ctype.h>
#include <dirent.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <time.h>

#include "b64.h"
#include "cleanup.h"
#include "crypto.h"
#include "fsutil.h"
#include "gz.h"
#include "hostpath.h"
#include "log.h"
#include "num.h"
#include "sbuf.h"
#include "xml.h"

#define X_DS "/DS_DRIVER_ACTION_DATA/DATASTORE"

/* monitord reads datagrams into a 64 KiB buffer and drops one that fills it
 * (UDPStream::read_line); IPv4 carries at most 65507 bytes. */
#define MAX_DATAGRAM 60000
#define MAX_CONF_BYTES (1u << 20)

/* ------------------------------------------------------------ the request */

struct request {
    char *dir;      /* DATASTORE_LOCATION/<id>, normalised */
    bool vm_disks;
};

static int load_request(const struct action_ctx *ctx, struct request *rq)
{
    _cleanup_free_ char *id = xml_get(ctx->ds, X_DS "/ID");
    _cleanup_free_ char *type = xml_get(ctx->ds, X_DS "/TYPE");
    _cleanup_free_ char *bridge = xml_get(ctx->ds, X_DS "/TEMPLATE/BRIDGE_LIST");
    _cleanup_free_ char *loc = xml_get(ctx->ds, "/DS_DRIVER_ACTION_DATA/DATASTORE_LOCATION");
    _cleanup_free_ char *disks = xml_get(ctx->ds, "/DS_DRIVER_ACTION_DATA/MONITOR_VM_DISKS");
    _cleanup_free_ char *joined = NULL;
    int msg_id;

    if (!id || parse_id(id, &msg_id) < 0)
        return fail("the driver message has no datastore");
    if (msg_id != ctx->id)
        return fail("the driver message is for datastore %d, not %d", msg_id, ctx->id);
    if (!streq(type, "1"))
        return fail("datastore %d is not a system datastore (TYPE %s): the qcow2c TM "
                    "monitor only monitors system datastores",
                    ctx->id, str_empty(type) ? "missing" : type);
    if (!str_empty(bridge))
        return fail("datastore %d has a BRIDGE_LIST: qcow2c needs the system datastore "
                    "mounted on the front-end and does not use bridge hosts",
                    ctx->id);
    if (str_empty(loc))
        return fail("the driver message for datastore %d has no DATASTORE_LOCATION", ctx->id);
    joined = xasprintf("%s/%d", loc, ctx->id);
    rq->dir = path_normalize(joined);
    if (!path_is_clean(rq->dir))
        return fail("datastore %d: unusable DATASTORE_LOCATION '%s'", ctx->id, loc);
    rq->vm_disks = streq(disks, "1");
    return 0;
}

/* ---------------------------------------------------------------- space */

static unsigned long long mb_up(unsigned long long bytes)
{
    return (bytes + (1ull << 20) - 1) >> 20;
}

static int print_space(const struct request *rq)
{
    struct statvfs sv;

    if (mkdir_p(rq->dir, 0755) < 0)
        return -1;
    if (statvfs(rq->dir, &sv) < 0)
        return fail_errno("cannot read the space of '%s'", rq->dir);
    printf("USED_MB=%llu\nFREE_MB=%llu\nTOTAL_MB=%llu\n",
           mb_up((unsigned long long)(sv.f_blocks - sv.f_bfree) * sv.f_frsize),
           mb_up((unsigned long long)sv.f_bavail * sv.f_frsize),
           mb_up((unsigned long long)sv.f_blocks * sv.f_frsize));
    return 0;
}

/* ---------------------------------------------------------- disk sizes */

/* "123" -> 123; anything else (also "007", which is not a VM's directory
 * name) -> -1. */
static int numeric_name(const char *s)
{
    int v;

    if (!isdigit((unsigned char)s[0]) || (s[0] == '0' && s[1]) || parse_id(s, &v) < 0)
        return -1;
    return v;
}

/* "disk.<n>" -> n, else -1. */
static int disk_name(const char *s)
{
    return starts_with(s, "disk.") ? numeric_name(s + 5) : -1;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return (x > y) - (x < y);
}

/* The ids of the entries of `dir` that `pick` accepts, ascending. Consumes
 * `fd` (a directory descriptor). */
static size_t list_ids(int fd, int (*pick)(const char *), int **ids)
{
    DIR *d = fdopendir(fd);
    size_t n = 0, alloc = 0;
    struct dirent *e;

    *ids = NULL;
    if (!d) {
        close(fd);
        return 0;
    }
    while ((e = readdir(d))) {
        int id = pick(e->d_name);

        if (id < 0)
            continue;
        ALLOC_GROW(*ids, n + 1, alloc);
        (*ids)[n++] = id;
    }
    closedir(d);
    if (n)
        qsort(*ids, n, sizeof(**ids), cmp_int);
    return n;
}

/* `du -mL dir_fd/name`: the MB allocated to what the name resolves to; -1
 * when it cannot be read (dangling link, raced away) or is a directory. */
static long long du_mb(int dir_fd, const char *name)
{
    struct stat st;

    if (fstatat(dir_fd, name, &st, 0) < 0 || S_ISDIR(st.st_mode))
        return -1;
    return (long long)mb_up((unsigned long long)st.st_blocks * 512u);
}

/* DISK_SIZE / SNAPSHOT_SIZE lines of one VM directory into `out`. */
static void vm_disk_lines(int vm_fd, struct sbuf *out)
{
    _cleanup_free_ int *disks = NULL;
    size_t n = list_ids(dup(vm_fd), disk_name, &disks);

    for (size_t i = 0; i < n; i++) {
        char name[32], snap_dir[40];
        _cleanup_free_ int *snaps = NULL;
        _cleanup_close_ int snap_fd = -1;
        long long size;
        size_t ns;

        snprintf(name, sizeof(name), "disk.%d", disks[i]);
        size = du_mb(vm_fd, name);
        if (size < 0)
            continue;
        sbuf_addf(out, "DISK_SIZE=[ID=%d,SIZE=%lld]\n", disks[i], size);
        snprintf(snap_dir, sizeof(snap_dir), "%s.snap", name);
        snap_fd = openat(vm_fd, snap_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (snap_fd < 0)
            continue;
        ns = list_ids(dup(snap_fd), numeric_name, &snaps);
        for (size_t k = 0; k < ns; k++) {
            char snap[16];

            snprintf(snap, sizeof(snap), "%d", snaps[k]);
            size = du_mb(snap_fd, snap);
            if (size >= 0)
                sbuf_addf(out, "SNAPSHOT_SIZE=[ID=%d,DISK_ID=%d,SIZE=%lld]\n", snaps[k],
                          disks[i], size);
        }
    }
}

/* One "VM=[...]\n" line per VM directory with a disk, appended to `payload`;
 * `starts` receives the offset of each line (and the end). */
static size_t collect_vms(const char *dir, struct sbuf *payload, size_t **starts)
{
    _cleanup_free_ int *vms = NULL;
    _cleanup_close_ int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct sbuf lines = SBUF_INIT, enc = SBUF_INIT;
    size_t n, count = 0, alloc = 0;

    *starts = NULL;
    if (dir_fd < 0) {
        log_warn("cannot read '%s': %s; VM disk sizes not sent", dir, strerror(errno));
        return 0;
    }
    n = list_ids(dup(dir_fd), numeric_name, &vms);
    for (size_t i = 0; i < n; i++) {
        char name[16];
        _cleanup_close_ int vm_fd = -1;

        snprintf(name, sizeof(name), "%d", vms[i]);
        vm_fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (vm_fd < 0)
            continue;
        sbuf_reset(&lines);
        vm_disk_lines(vm_fd, &lines);
        if (!lines.len)
            continue;
        sbuf_reset(&enc);
        b64_encode(lines.buf, lines.len, &enc);
        ALLOC_GROW(*starts, count + 2, alloc);
        (*starts)[count++] = payload->len;
        sbuf_addf(payload, "VM=[ID=%d, MONITOR=\"%s\"]\n", vms[i], enc.buf);
    }
    if (count)
        (*starts)[count] = payload->len;
    sbuf_release(&lines);
    sbuf_release(&enc);
    return count;
}

/* ------------------------------------------------------- monitord.conf */

struct monitord {
    char *path;
    char *address;
    char *port;
    char *pubkey;
};

static void monitord_release(struct monitord *m)
{
    free(m->path);
    free(m->address);
    free(m->port);
    free(m->pubkey);
}

/* A tiny reader of OpenNebula's template syntax (src/parsers/template_*):
 * NAME = value | NAME = "quoted" | NAME = [ A = v, B = "v" ], '#' comments. */
struct lexer {
    const char *p;
};

static void skip_space(struct lexer *lx)
{
    for (;;) {
        while (*lx->p && isspace((unsigned char)*lx->p))
            lx->p++;
        if (*lx->p != '#')
            return;
        while (*lx->p && *lx->p != '\n')
            lx->p++;
    }
}

static bool is_word(char c)
{
    return c && !isspace((unsigned char)c) && !strchr("=#,[]\"", c);
}

/* A name or a bare/quoted value; NULL at a syntax error. */
static char *next_word(struct lexer *lx)
{
    const char *s;

    skip_space(lx);
    if (*lx->p == '"') {
        struct sbuf v = SBUF_INIT;

        for (s = lx->p + 1; *s && *s != '"'; s++) {
            if (s[0] == '\\' && s[1] == '"')
                s++;
            sbuf_addch(&v, *s);
        }
        if (*s != '"') {
            sbuf_release(&v);
            return NULL;
        }
        lx->p = s + 1;
        return sbuf_detach(&v);
    }
    for (s = lx->p; is_word(*s); s++)
        ;
    if (s == lx->p)
        return NULL;
    {
        char *w = xstrndup(lx->p, (size_t)(s - lx->p));

        lx->p = s;
        return w;
    }
}

static bool take(struct lexer *lx, char c)
{
    skip_space(lx);
    if (*lx->p != c)
        return false;
    lx->p++;
    return true;
}

static void keep(char **slot, char *value)
{
    free(*slot);
    *slot = value;
}

/* Reads NETWORK = [ MONITOR_ADDRESS, PORT, PUBKEY ]; 0, or -1 with a reason. */
static int parse_monitord(const char *text, struct monitord *m)
{
    struct lexer lx = { text };

    for (skip_space(&lx); *lx.p; skip_space(&lx)) {
        _cleanup_free_ char *name = next_word(&lx);
        bool network = name && strcasecmp(name, "NETWORK") == 0;

        if (!name || !take(&lx, '='))
            return fail("syntax error near '%.20s'", lx.p);
        while (*lx.p == ' ' || *lx.p == '\t')
            lx.p++;
        if (*lx.p == '\n' || *lx.p == '\0')
            continue; /* "NAME =" and the end of the line: an empty value */
        if (!take(&lx, '[')) {
            _cleanup_free_ char *v = next_word(&lx);

            if (!v)
                return fail("syntax error near '%.20s'", lx.p);
            continue;
        }
        if (take(&lx, ']'))
            continue;
        do {
            _cleanup_free_ char *key = NULL;
            char *v;

            skip_space(&lx);
            if (*lx.p == ']')
                break; /* a comma before the bracket */
            key = next_word(&lx);
            if (!key || !take(&lx, '='))
                return fail("syntax error near '%.20s'", lx.p);
            skip_space(&lx);
            v = (*lx.p == ',' || *lx.p == ']') ? xstrdup("") : next_word(&lx);
            if (!v)
                return fail("syntax error near '%.20s'", lx.p);
            if (network && strcasecmp(key, "MONITOR_ADDRESS") == 0)
                keep(&m->address, v);
            else if (network && strcasecmp(key, "PORT") == 0)
                keep(&m->port, v);
            else if (network && strcasecmp(key, "PUBKEY") == 0)
                keep(&m->pubkey, v);
            else
                free(v);
        } while (take(&lx, ','));
        if (!take(&lx, ']'))
            return fail("syntax error near '%.20s'", lx.p);
    }
    return 0;
}

/* 1 with `m` filled, 0 when there is no monitord.conf (nothing to send),
 * -1 when it cannot be used (reason recorded). */
static int monitord_load(struct monitord *m)
{
    const char *loc = getenv("ONE_LOCATION");
    struct sbuf text = SBUF_INIT;
    uint64_t port;
    int rc;

    memset(m, 0, sizeof(*m));
    m->path = str_empty(loc) ? xstrdup("/etc/one/monitord.conf")
                             : xasprintf("%s/etc/monitord.conf", loc);
    if (sbuf_read_file(&text, m->path, MAX_CONF_BYTES) < 0) {
        int e = errno;

        sbuf_release(&text);
        if (e == ENOENT)
            return 0;
        return fail("cannot read %s: %s", m->path, strerror(e));
    }
    rc = parse_monitord(text.buf, m);
    sbuf_release(&text);
    if (rc < 0)
        return fail_context("%s", m->path);
    if (str_empty(m->port) || parse_u64(m->port, 65535, &port) < 0 || port == 0)
        return fail("%s: NETWORK/PORT '%s' is not a port", m->path, m->port ? m->port : "");
    if (str_empty(m->address) || strstr(m->address, "auto"))
        keep(&m->address, xstrdup("127.0.0.1"));
    return 1;
}

/* ------------------------------------------------------------- packing */

static struct pubkey *load_pubkey(const char *path)
{
    struct sbuf pem = SBUF_INIT;
    struct pubkey *key = NULL;

    if (sbuf_read_file(&pem, path, MAX_CONF_BYTES) < 0)
        log_warn("cannot read monitord's PUBKEY %s: %s; sending unencrypted", path,
                 strerror(errno));
    else if (!(key = pubkey_from_pem(pem.buf, pem.len)))
        log_warn("monitord's PUBKEY %s: %s; sending unencrypted", path, fail_reason());
    fail_reset();
    sbuf_release(&pem);
    return key;
}

/* The datagram for `len` bytes of payload: "MONITOR_VM SUCCESS -1 0 <b64>\n",
 * the payload encrypted first when monitord has a key (monitord_client.rb
 * #pack), then compressed. */
static int pack(const struct pubkey *key, const char *payload, size_t len, struct sbuf *dgram)
{
    struct sbuf enc = SBUF_INIT, z = SBUF_INIT;
    int rc = -1;

    if (key) {
        if (pubkey_encrypt(key, payload, len, &enc) < 0) {
            log_warn("cannot encrypt the VM disk sizes for monitord: %s", fail_reason());
            goto out;
        }
        payload = enc.buf;
        len = enc.len;
    }
    if (zlib_compress(payload, len, &z) < 0) {
        log_warn("cannot compress the VM disk sizes for monitord: %s", fail_reason());
        goto out;
    }
    sbuf_reset(dgram);
    sbuf_adds(dgram, "MONITOR_VM SUCCESS -1 0 ");
    b64_encode(z.buf, z.len, dgram);
    sbuf_addch(dgram, '\n');
    rc = 0;
out:
    fail_reset();
    sbuf_release(&z);
    sbuf_release(&enc);
    return rc;
}

/* ------------------------------------------------------------- sending */

struct sender {
    int fd;
    const struct addrinfo *to;
    struct pubkey *key;
    const struct sbuf *payload;
    const size_t *starts;
    unsigned sent, vms, dropped;
};

/* Sends VM lines [first, first + n) in one datagram, or halves until each
 * part fits. */
static void send_lines(struct sender *s, size_t first, size_t n)
{
    struct sbuf dgram = SBUF_INIT;
    const char *p = s->payload->buf + s->starts[first];
    size_t len = s->starts[first + n] - s->starts[first];

    if (pack(s->key, p, len, &dgram) < 0) {
        s->dropped += (unsigned)n;
    } else if (dgram.len > MAX_DATAGRAM && n > 1) {
        send_lines(s, first, n / 2);
        send_lines(s, first + n / 2, n - n / 2);
    } else if (dgram.len > MAX_DATAGRAM) {
        log_warn("the disk sizes of one VM do not fit in a monitord message (%zu bytes): "
                 "not sent (%.40s...)",
                 dgram.len, p);
        s->dropped++;
    } else {
        /* A burst larger than monitord's socket buffer would be dropped by
         * the kernel: a short pause between datagrams. */
        if (s->sent) {
            struct timespec ts = { 0, 2 * 1000 * 1000 };

            nanosleep(&ts, NULL);
        }
        if (sendto(s->fd, dgram.buf, dgram.len, 0, s->to->ai_addr, s->to->ai_addrlen) < 0) {
            log_warn("cannot send the VM disk sizes to monitord: %s", strerror(errno));
            s->dropped += (unsigned)n;
        } else {
            s->sent++;
            s->vms += (unsigned)n;
        }
    }
    sbuf_release(&dgram);
}

static void send_vm_disks(const struct request *rq)
{
    struct monitord m;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    struct sbuf payload = SBUF_INIT;
    _cleanup_free_ size_t *starts = NULL;
    struct sender s = { .fd = -1, .payload = &payload };
    size_t n;
    int rc, gai;

    rc = monitord_load(&m);
    if (rc <= 0) {
        if (rc < 0)
            log_warn("%s; VM disk sizes not sent", fail_reason());
        else
            log_debug("no %s: VM disk sizes not sent", m.path);
        fail_reset();
        goto out;
    }
    n = collect_vms(rq->dir, &payload, &starts);
    if (!n) {
        log_debug("no VM disks in %s", rq->dir);
        goto out;
    }
    gai = getaddrinfo(m.address, m.port, &hints, &ai);
    if (gai != 0) {
        log_warn("monitord address %s (%s): %s; VM disk sizes not sent", m.address, m.path,
                 gai_strerror(gai));
        goto out;
    }
    s.to = ai;
    s.fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s.fd < 0) {
        log_warn("cannot open a UDP socket: %s; VM disk sizes not sent", strerror(errno));
        goto out;
    }
    if (!str_empty(m.pubkey))
        s.key = load_pubkey(m.pubkey);
    s.starts = starts;
    send_lines(&s, 0, n);
    if (s.dropped)
        log_warn("disk sizes of %u of %zu VMs not sent to monitord", s.dropped, n);
    log_debug("disk sizes of %u VMs sent to monitord at %s port %s in %u message(s)%s",
              s.vms, m.address, m.port, s.sent, s.key ? ", encrypted" : "");
out:
    if (s.fd >= 0)
        close(s.fd);
    pubkey_free(s.key);
    if (ai)
        freeaddrinfo(ai);
    sbuf_release(&payload);
    monitord_release(&m);
}

int tm_monitor(struct action_ctx *ctx)
{
    struct request rq = { 0 };
    int rc = -1;

    if (load_request(ctx, &rq) < 0 || print_space(&rq) < 0)
        goto out;
    if (rq.vm_disks)
        send_vm_disks(&rq);
    rc = 0;
out:
    free(rq.dir);
    return rc;
}
