/*
 * onesnap - disk snapshots of OpenNebula VMs, for users and administrators:
 * save a disk now or at the VM's shutdown, and list, show, delete and boot
 * what was saved (usage_text below).
 *
 * Runs with the caller's own credentials, found as OpenNebula's clients
 * find them (ONE_XMLRPC, ONE_AUTH, ~/.one/one_auth; common/one.h): oned
 * checks every request against them.
 *
 * Bad input: one line on stderr, exit status 2; a refusal or an oned
 * failure: one line, exit status 1.
 */
#include "onesnap.h"

#include <ctype.h>
#include <math.h>

#include "cleanup.h"
#include "dsave.h"
#include "log.h"
#include "num.h"

static const char usage_text[] =
    "usage: onesnap create VM_ID DISK_ID NAME --deferred [--type T] [--persistent]\n"
    "       onesnap create VM_ID DISK_ID NAME --hot [--type T] [--snapshot S]\n"
    "       onesnap cancel VM_ID DISK_ID\n"
    "       onesnap list --pending [--vm VM_ID] [--mine]\n"
    "       onesnap list [--vm VM_ID] [--name TEXT] [--how HOW] [--mine]\n"
    "                    [--page N] [--per-page K]\n"
    "       onesnap show SNAPSHOT_ID\n"
    "       onesnap delete SNAPSHOT_ID\n"
    "       onesnap boot SNAPSHOT_ID [--name NAME] [--hold] [--cpu C] [--vcpu N]\n"
    "                    [--memory MB]\n"
    "\n"
    "  create --deferred  save the disk when the VM is terminated (the image is made\n"
    "                then, from the disk as the shutdown left it, and given to the\n"
    "                VM's owner)\n"
    "  create --hot  save it now (oned's one.vm.disksaveas); prints the new image id\n"
    "  --type T      OS, DATABLOCK or CDROM (default: the type of the disk's image)\n"
    "  --persistent  the saved image is persistent (--deferred only)\n"
    "  --snapshot S  save disk snapshot S instead of the current state (--hot only)\n"
    "  cancel        withdraw the pending deferred save of the disk\n"
    "  list --pending  the deferred saves waiting for their VM's terminate\n"
    "  list          the snapshots (images a disk save made), newest first:\n"
    "                --vm the saves of one VM, --name those whose name holds TEXT,\n"
    "                --how hot, saveas or deferred, --mine your own only,\n"
    "                --page/--per-page (default 20 a page)\n"
    "  show          everything known of a snapshot: where, when, how consistent\n"
    "  delete        delete a snapshot (an image no save made is refused)\n"
    "  boot          a new VM whose disk is the snapshot, shaped like the VM it was\n"
    "                saved from (size, machine, networks); prints the new VM's id\n"
    "\n"
    "oned is reached as OpenNebula's tools reach it: ONE_XMLRPC, ONE_AUTH, ~/.one/one_auth.\n";

/* ---- the command line: options by table, each allowed where it means something ---- */

enum opt {
    O_DEFERRED,
    O_HOT,
    O_PERSISTENT,
    O_PENDING,
    O_MINE,
    O_HOLD,
    O_TYPE,
    O_SNAPSHOT,
    O_VM,
    O_NAME,
    O_HOW,
    O_PAGE,
    O_PER_PAGE,
    O_CPU,
    O_VCPU,
    O_MEMORY,
    O_COUNT
};

#define BIT(o) (1u << (o))

static const struct {
    const char *name;
    bool value;
} options[O_COUNT] = {
    [O_DEFERRED] = { "--deferred", false },
    [O_HOT] = { "--hot", false },
    [O_PERSISTENT] = { "--persistent", false },
    [O_PENDING] = { "--pending", false },
    [O_MINE] = { "--mine", false },
    [O_HOLD] = { "--hold", false },
    [O_TYPE] = { "--type", true },
    [O_SNAPSHOT] = { "--snapshot", true },
    [O_VM] = { "--vm", true },
    [O_NAME] = { "--name", true },
    [O_HOW] = { "--how", true },
    [O_PAGE] = { "--page", true },
    [O_PER_PAGE] = { "--per-page", true },
    [O_CPU] = { "--cpu", true },
    [O_VCPU] = { "--vcpu", true },
    [O_MEMORY] = { "--memory", true },
};

struct cmdline {
    unsigned given;           /* BIT(opt) */
    const char *val[O_COUNT]; /* the value options' */
    const char *pos[3];
    size_t npos;
};

static const struct command {
    const char *name;
    size_t npos;
    const char *operands;
    unsigned allowed;
} commands[] = {
    { "create", 3, "VM_ID DISK_ID NAME",
      BIT(O_DEFERRED) | BIT(O_HOT) | BIT(O_PERSISTENT) | BIT(O_TYPE) | BIT(O_SNAPSHOT) },
    { "cancel", 2, "VM_ID DISK_ID", 0 },
    { "list", 0, "",
      BIT(O_PENDING) | BIT(O_VM) | BIT(O_NAME) | BIT(O_HOW) | BIT(O_MINE) | BIT(O_PAGE) |
          BIT(O_PER_PAGE) },
    { "show", 1, "SNAPSHOT_ID", 0 },
    { "delete", 1, "SNAPSHOT_ID", 0 },
    { "boot", 1, "SNAPSHOT_ID",
      BIT(O_NAME) | BIT(O_HOLD) | BIT(O_CPU) | BIT(O_VCPU) | BIT(O_MEMORY) },
};

static int usage_error(const char *fmt, ...) PRINTF_LIKE(1, 2);

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("onesnap: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (onesnap --help)\n", stderr);
    return 2;
}

static int find_option(const char *s)
{
    for (int o = 0; o < O_COUNT; o++)
        if (streq(s, options[o].name))
            return o;
    return -1;
}

static int split_args(int argc, char **argv, const struct command *cmd, struct cmdline *cl)
{
    memset(cl, 0, sizeof(*cl));
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        int o = find_option(s);

        if (o >= 0) {
            if (!(cmd->allowed & BIT(o)))
                return usage_error("%s does not take %s", cmd->name, s);
            if (options[o].value) {
                if (i + 1 >= argc)
                    return usage_error("%s needs a value", s);
                cl->val[o] = argv[++i];
            }
            cl->given |= BIT(o);
        } else if (starts_with(s, "--") && !streq(s, "--")) {
            return usage_error("unknown option '%s'", s);
        } else {
            if (cl->npos == cmd->npos)
                return usage_error("%s takes %s%s", cmd->name,
                                   *cmd->operands ? cmd->operands : "no operands",
                                   *cmd->operands ? " only" : "");
            cl->pos[cl->npos++] = s;
        }
    }
    if (cl->npos != cmd->npos)
        return usage_error("%s needs %s", cmd->name, cmd->operands);
    return 0;
}

/* A whole number in [1, max] (ids, pages, sizes). */
static int positive(const char *opt, const char *s, int64_t max, int64_t *out)
{
    if (parse_i64(s, 1, max, out) < 0)
        return usage_error("%s needs a whole number from 1 to %lld, not '%s'", opt, (long long)max,
                           s);
    return 0;
}

static int id_arg(const char *what, const char *s, int *out)
{
    if (parse_id(s, out) < 0)
        return usage_error("'%s' is not a %s id", s, what);
    return 0;
}

static int check_create(const struct cmdline *cl, struct args *a)
{
    if (a->deferred == a->hot)
        return usage_error("create needs exactly one of --deferred and --hot");
    if (a->hot && a->persistent)
        return usage_error("--persistent goes with --deferred only (oned's save-as makes "
                           "non-persistent images)");
    if (cl->val[O_SNAPSHOT] && !a->hot)
        return usage_error("--snapshot goes with --hot only");
    if (cl->val[O_SNAPSHOT] && parse_id(cl->val[O_SNAPSHOT], &a->snap_id) < 0)
        return usage_error("--snapshot needs a snapshot id, not '%s'", cl->val[O_SNAPSHOT]);
    if (cl->val[O_TYPE]) {
        a->type = xstrdup(cl->val[O_TYPE]);
        for (char *p = a->type; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        if (!dsave_type_valid(a->type))
            return usage_error("--type must be OS, DATABLOCK or CDROM, not '%s'", cl->val[O_TYPE]);
    }
    if (id_arg("VM", cl->pos[0], &a->vmid) || id_arg("disk", cl->pos[1], &a->disk_id))
        return 2;
    a->name = cl->pos[2];
    if (dsave_name_check(a->name) < 0)
        return usage_error("%s", fail_reason());
    return 0;
}

static int check_list(const struct cmdline *cl, struct args *a)
{
    int64_t v;

    if (a->pending && (cl->given & (BIT(O_NAME) | BIT(O_HOW) | BIT(O_PAGE) | BIT(O_PER_PAGE))))
        return usage_error("list --pending takes --vm and --mine only");
    if (cl->val[O_VM] && id_arg("VM", cl->val[O_VM], &a->filter.vm_id))
        return 2;
    a->filter.name = cl->val[O_NAME];
    if (cl->val[O_HOW] && snapimg_how_parse(cl->val[O_HOW], &a->filter.how) < 0)
        return usage_error("--how must be hot, saveas or deferred, not '%s'", cl->val[O_HOW]);
    if (cl->val[O_PAGE]) {
        if (positive("--page", cl->val[O_PAGE], INT_MAX, &v))
            return 2;
        a->page = (size_t)v;
    }
    if (cl->val[O_PER_PAGE]) {
        if (positive("--per-page", cl->val[O_PER_PAGE], 10000, &v))
            return 2;
        a->per_page = (size_t)v;
    }
    return 0;
}

static int check_boot(const struct cmdline *cl, struct args *a)
{
    int64_t v;

    a->name = cl->val[O_NAME];
    if (a->name && dsave_name_check(a->name) < 0)
        return usage_error("%s", fail_reason());
    if (cl->val[O_CPU]) {
        char *end;
        double d = strtod(cl->val[O_CPU], &end);

        if (end == cl->val[O_CPU] || *end || !isfinite(d) || d <= 0 || d > 1024)
            return usage_error("--cpu needs a number above 0 (0.5, 2), not '%s'", cl->val[O_CPU]);
        a->cpu = cl->val[O_CPU];
    }
    if (cl->val[O_VCPU]) {
        if (positive("--vcpu", cl->val[O_VCPU], 1024, &v))
            return 2;
        a->vcpu = (int)v;
    }
    if (cl->val[O_MEMORY]) {
        if (positive("--memory", cl->val[O_MEMORY], INT64_C(1) << 32, &v))
            return 2;
        a->memory_mb = v;
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    const struct command *cmd = NULL;
    struct cmdline cl;
    int rc;

    memset(a, 0, sizeof(*a));
    a->cmd = argv[1];
    a->snap_id = -1;
    a->filter = (struct snap_filter)SNAP_FILTER_INIT;
    a->page = 1;
    a->per_page = ONESNAP_PER_PAGE;
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (streq(a->cmd, commands[i].name))
            cmd = &commands[i];
    if (!cmd)
        return usage_error("unknown command '%s'", a->cmd);
    rc = split_args(argc, argv, cmd, &cl);
    if (rc)
        return rc;
    a->deferred = cl.given & BIT(O_DEFERRED);
    a->hot = cl.given & BIT(O_HOT);
    a->persistent = cl.given & BIT(O_PERSISTENT);
    a->pending = cl.given & BIT(O_PENDING);
    a->mine = cl.given & BIT(O_MINE);
    a->hold = cl.given & BIT(O_HOLD);
    if (streq(cmd->name, "create"))
        return check_create(&cl, a);
    if (streq(cmd->name, "cancel"))
        return id_arg("VM", cl.pos[0], &a->vmid) || id_arg("disk", cl.pos[1], &a->disk_id) ? 2 : 0;
    if (streq(cmd->name, "list"))
        return check_list(&cl, a);
    if (id_arg("snapshot", cl.pos[0], &a->image_id))
        return 2;
    return streq(cmd->name, "boot") ? check_boot(&cl, a) : 0;
}

static int run(struct one_client *c, const struct args *a)
{
    if (streq(a->cmd, "create"))
        return a->deferred ? cmd_create_deferred(c, a) : cmd_create_hot(c, a);
    if (streq(a->cmd, "cancel"))
        return cmd_cancel(c, a);
    if (streq(a->cmd, "list"))
        return a->pending ? cmd_list_pending(c, a) : cmd_list(c, a);
    if (streq(a->cmd, "show"))
        return cmd_show(c, a);
    if (streq(a->cmd, "delete"))
        return cmd_delete(c, a);
    return cmd_boot(c, a);
}

int main(int argc, char **argv)
{
    struct one_client *c;
    struct args a;
    int rc;

    log_setup("onesnap", -1);
    if (argc < 2)
        return usage_error("a command is needed");
    if (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    rc = parse_args(argc, argv, &a);
    if (rc == 0) {
        c = one_open(NULL);
        rc = c && run(c, &a) == 0 ? 0 : -1;
        one_close(c);
    }
    free(a.type);
    if (rc < 0) {
        fprintf(stderr, "onesnap: %s\n", failed() ? fail_reason() : "failed");
        return 1;
    }
    return rc;
}
