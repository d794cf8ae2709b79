/* config.c - qcow2c.conf: the table of keys, the parser, typed access. */
#include "config.h"

#include <libgen.h>

#include "cleanup.h"
#include "log.h"
#include "num.h"
#include "sbuf.h"

enum kind { K_STR, K_UINT, K_BOOL };

struct key {
    const char *name;
    enum kind kind;
    const char *def;
    const char *help;
    char *value; /* from the file, or NULL */
};

/* Every setting qcow2c knows. oned-conf/qcow2c.conf is generated from this
 * table (make conf), so the documentation cannot drift from the code. */
static struct key keys[] = {
    { "ONE_XMLRPC", K_STR, "",
      "oned's XML-RPC endpoint; empty: $ONE_XMLRPC, ~/.one/one_endpoint, "
      "/var/lib/one/.one/one_endpoint, http://localhost:2633/RPC2, as OpenNebula's own "
      "clients look it up", NULL },
    { "ONE_AUTH", K_STR, "",
      "file holding 'user:password' for oned; empty: $ONE_AUTH, ~/.one/one_auth, "
      "/var/lib/one/.one/one_auth", NULL },
    { "XMLRPC_TIMEOUT", K_UINT, "60", "seconds one XML-RPC call to oned may take", NULL },
    { "SSH", K_STR, "ssh", "the ssh client used to reach hosts", NULL },
    { "SSH_OPTIONS", K_STR, "",
      "extra ssh options, blank-separated (e.g. -F /path/to/config); ports and "
      "users belong in ~oneadmin/.ssh/config", NULL },
    { "SSH_CONNECT_TIMEOUT", K_UINT, "15", "seconds to establish an ssh connection", NULL },
    { "SSH_ALIVE_INTERVAL", K_UINT, "10",
      "seconds between ssh keep-alive probes (ServerAliveInterval)", NULL },
    { "SSH_ALIVE_COUNT", K_UINT, "6",
      "unanswered keep-alive probes before ssh gives up on a host", NULL },
    { "LOCAL_HOSTS", K_STR, "",
      "host names that are this front-end (work there runs without ssh); its own "
      "host name and localhost always are", NULL },
    { "TIMEOUT", K_UINT, "600",
      "seconds any single command (qemu-img info/create, mkdir, ...) may run", NULL },
    { "COPY_TIMEOUT", K_UINT, "43200", "seconds a data copy or conversion may run", NULL },
    { "LOCK_TIMEOUT", K_UINT, "600",
      "seconds an action waits for another action on the same VM or image", NULL },
    { "LOCK_DIR", K_STR, "/var/lock/one/qcow2c", "where the front-end lock files live", NULL },
    { "QEMU_IMG", K_STR, "qemu-img", "the qemu-img program", NULL },
    { "VIRSH", K_STR, "virsh", "the virsh program on hosts", NULL },
    { "LIBVIRT_URI", K_STR, "qemu:///system", "libvirt connection URI on hosts", NULL },
    { "QCOW2_OPTIONS", K_STR, "",
      "extra -o options for every qcow2 file qcow2c creates (e.g. cluster_size=131072)",
      NULL },
    { "VERIFY_COPIES", K_BOOL, "yes",
      "run 'qemu-img check' on every copied image before it is published", NULL },
    { "HOT_SAVE_REQUIRE_FREEZE", K_BOOL, "no",
      "a hot disk save-as of a running VM fails instead of making a crash-consistent copy "
      "when the guest's file systems cannot be frozen (no or no answering guest agent)",
      NULL },
    { "DEFERRED_SAVE_ON_HARD_TERMINATE", K_BOOL, "yes",
      "a deferred disk save (onesnap create --deferred) is still made when the VM was not "
      "shut down gracefully (terminate --hard, recover --delete); the image is then marked "
      "crash-consistent. no: the request is skipped (STATE=SKIPPED) and the disk goes",
      NULL },
    { "SUPPORTED_FS", K_STR, "ext2,ext3,ext4,xfs",
      "file systems an empty datablock may be formatted with (FS attribute)", NULL },
    { "HTTP_CONNECT_TIMEOUT", K_UINT, "30", "seconds to connect when downloading an image",
      NULL },
    { "DEBUG", K_BOOL, "no", "log every command run as a DEBUG line (oned.log or VM log)",
      NULL },
};

static char *loaded_path;

static struct key *find(const char *name, size_t len)
{
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (strlen(keys[i].name) == len && !memcmp(keys[i].name, name, len))
            return &keys[i];
    return NULL;
}

static struct key *must_find(const char *name)
{
    struct key *k = find(name, strlen(name));

    if (!k)
        die("internal error: unknown configuration key %s", name);
    return k;
}

static const char *value_of(const struct key *k)
{
    return k->value ? k->value : k->def;
}

static int check_value(const struct key *k, const char *v)
{
    uint64_t n;

    if (k->kind == K_UINT && parse_u64(v, UINT_MAX, &n) < 0)
        return fail("'%s' is not a valid value for %s: a whole number is needed", v, k->name);
    if (k->kind == K_BOOL && !is_yes(v) && !is_no(v))
        return fail("'%s' is not a valid value for %s: yes or no is needed", v, k->name);
    return 0;
}

/* Parses the value part of a line: bare word(s) or one double-quoted string. */
static int parse_value(const char *p, struct sbuf *out)
{
    p += strspn(p, " \t");
    if (*p != '"') {
        /* As in a shell, '#' after a blank starts a comment. */
        for (const char *q = p; *q; q++) {
            if (*q == '#' && (q == p || q[-1] == ' ' || q[-1] == '\t'))
                break;
            sbuf_addch(out, *q);
        }
        sbuf_rtrim(out);
        return 0;
    }
    for (p++; *p && *p != '"'; p++) {
        if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
            p++;
        sbuf_addch(out, *p);
    }
    if (*p != '"')
        return -1;
    p++;
    p += strspn(p, " \t\r\n");
    return *p && *p != '#' ? -1 : 0;
}

static int parse_line(const char *path, unsigned lineno, char *line)
{
    struct sbuf val = SBUF_INIT;
    struct key *k;
    char *p = line + strspn(line, " \t");
    size_t nlen;

    if (!*p || *p == '#' || *p == '\n' || *p == '\r')
        return 0;
    if (starts_with(p, "export "))
        p += 7;
    nlen = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    if (!nlen || p[nlen] != '=')
        return fail("%s line %u: expected KEY=value", path, lineno);
    k = find(p, nlen);
    if (!k)
        return fail("%s line %u: unknown setting %.*s", path, lineno, (int)nlen, p);
    if (parse_value(p + nlen + 1, &val) < 0) {
        sbuf_release(&val);
        return fail("%s line %u: unterminated or trailing text after quoted value", path,
                    lineno);
    }
    if (check_value(k, val.buf) < 0) {
        sbuf_release(&val);
        return fail_context("%s line %u", path, lineno);
    }
    free(k->value);
    k->value = sbuf_detach(&val);
    return 0;
}

static void reset_values(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        free(keys[i].value);
        keys[i].value = NULL;
    }
    free(loaded_path);
    loaded_path = NULL;
}

int config_load_file(const char *path)
{
    _cleanup_fclose_ FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    int rc = 0;

    reset_values();
    if (!path)
        goto done;
    f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            goto done;
        return fail_errno("cannot read the configuration file %s", path);
    }
    while (getline(&line, &cap, f) >= 0) {
        line[strcspn(line, "\r\n")] = '\0';
        if (parse_line(path, ++lineno, line) < 0) {
            rc = -1;
            break;
        }
    }
    free(line);
    if (rc < 0)
        reset_values(); /* all or nothing: no half-applied file */
    if (rc == 0 && ferror(f))
        rc = fail_errno("cannot read the configuration file %s", path);
    if (rc == 0)
        loaded_path = xstrdup(path);
done:
    log_enable_debug(config_bool("DEBUG"));
    return rc;
}

int config_load(const char *argv0)
{
    const char *env = getenv("QCOW2C_CONF");
    _cleanup_free_ char *self = NULL;
    _cleanup_free_ char *copy = NULL;
    _cleanup_free_ char *path = NULL;

    if (env && *env)
        return config_load_file(env);
    if (!argv0 || !strchr(argv0, '/')) {
        self = realpath("/proc/self/exe", NULL);
        argv0 = self;
    }
    if (!argv0)
        return config_load_file(NULL);
    copy = xstrdup(argv0);
    path = xasprintf("%s/../../etc/qcow2c/qcow2c.conf", dirname(copy));
    return config_load_file(path);
}

const char *config_str(const char *key)
{
    const struct key *k = must_find(key);

    return value_of(k);
}

unsigned config_uint(const char *key)
{
    const struct key *k = must_find(key);
    uint64_t n = 0;

    if (k->kind != K_UINT || parse_u64(value_of(k), UINT_MAX, &n) < 0)
        die("internal error: %s is not a number", key);
    return (unsigned)n;
}

bool config_bool(const char *key)
{
    const struct key *k = must_find(key);

    if (k->kind != K_BOOL)
        die("internal error: %s is not a yes/no setting", key);
    return is_yes(value_of(k));
}

void config_words(const char *key, struct strvec *out)
{
    strvec_split(out, config_str(key));
}

const char *config_path(void)
{
    return loaded_path;
}

/* Writes `v` as a double-quoted value that parse_value reads back. */
static void dump_quoted(FILE *f, const char *v)
{
    fputc('"', f);
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            fputc('\\', f);
        fputc(*v, f);
    }
    fputc('"', f);
}

void config_dump(FILE *f)
{
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        fprintf(f, "# %s (default: ", keys[i].help);
        dump_quoted(f, keys[i].def);
        fprintf(f, ")\n%s%s=", keys[i].value ? "" : "#", keys[i].name);
        dump_quoted(f, value_of(&keys[i]));
        fputs("\n\n", f);
    }
}
