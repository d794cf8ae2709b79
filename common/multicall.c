/* multicall.c - dispatch on the invoked name; see multicall.h. */
#include "multicall.h"

#include <signal.h>

#include "config.h"
#include "dsinput.h"
#include "hostpath.h"
#include "log.h"
#include "num.h"
#include "run.h"
#include "version.h"
#include "xml.h"

/* oned's driver gives actions pipes, but a hand-run action may have a closed
 * descriptor; a file we open later must never become fd 1 or 2. */
static void ensure_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);

            if (n >= 0 && n != fd) {
                dup2(n, fd);
                close(n);
            }
        }
    }
}

static const struct action *find_action(const struct action *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (streq(t[i].name, name))
            return &t[i];
    return NULL;
}

static void print_help(const char *prog, const struct action *t, size_t n)
{
    printf("usage: %s ACTION ARGS...   (or run through a link named after the action)\n"
           "       %s --list | --config | --version\n\nactions:\n",
           prog, prog);
    for (size_t i = 0; i < n; i++)
        printf("  %-18s %s\n  %-18s   %s\n", t[i].name, t[i].usage, "", t[i].summary);
}

static int usage_error(const struct action *a, int argc)
{
    fprintf(stderr, "%s: wrong number of arguments (%d); usage: %s %s\n", a->name, argc,
            a->name, a->usage);
    return 2;
}

/* `argv0` is the program as started (for finding qcow2c.conf); `argv` holds
 * the arguments after the action name. */
static int run_action(const struct action *a, const char *name, const char *argv0, int argc,
                      char **argv)
{
    struct action_ctx ctx = { .act = a, .name = name, .argc = argc, .argv = argv, .id = -1 };
    int rc;

    log_setup(name, -1);
    if (argc < a->min_args || (a->max_args >= 0 && argc > a->max_args))
        return usage_error(a, argc);
    if (a->id_pos) {
        int pos = a->id_pos > 0 ? a->id_pos - 1 : argc + a->id_pos;

        if (pos < 0 || pos >= argc || parse_id(argv[pos], &ctx.id) < 0) {
            fprintf(stderr, "%s: '%s' is not a valid id; usage: %s %s\n", name,
                    pos >= 0 && pos < argc ? argv[pos] : "", name, a->usage);
            return 2;
        }
        if (a->flags & ACT_ID_IS_VM)
            log_set_vmid(ctx.id);
    }
    if (config_load(argv0) < 0)
        return report_failure();
    run_default_timeout = config_uint("TIMEOUT");
    if (a->flags & ACT_STDIN_DS) {
        ctx.ds = ds_input_read(STDIN_FILENO);
        if (!ctx.ds)
            return report_failure();
    }
    rc = a->run(&ctx);
    xml_free(ctx.ds);
    log_debug("%lu child processes", run_children_started);
    if (rc < 0 || failed())
        return report_failure();
    return 0;
}

int multicall_main(const char *prog, const struct action *t, size_t n, int argc, char **argv)
{
    const char *self = argc > 0 ? path_basename(argv[0]) : prog;
    const struct action *a;

    ensure_std_fds();
    signal(SIGPIPE, SIG_IGN);

    a = find_action(t, n, self);
    if (a)
        return run_action(a, self, argv[0], argc - 1, argv + 1);

    if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
        print_help(prog, t, n);
        return argc < 2 ? 2 : 0;
    }
    if (streq(argv[1], "--list")) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", t[i].name);
        return 0;
    }
    if (streq(argv[1], "--version")) {
        printf("%s %s\n", prog, QCOW2C_VERSION);
        return 0;
    }
    if (streq(argv[1], "--config")) {
        if (config_load(argv[0]) < 0)
            return report_failure();
        printf("# %s\n", config_path() ? config_path() : "(no file: built-in defaults)");
        config_dump(stdout);
        return 0;
    }
    a = find_action(t, n, argv[1]);
    if (!a) {
        fprintf(stderr, "%s: unknown action '%s' (see %s --help)\n", prog, argv[1], prog);
        return 2;
    }
    return run_action(a, argv[1], argv[0], argc - 2, argv + 2);
}
