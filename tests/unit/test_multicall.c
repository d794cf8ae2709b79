/* test_multicall.c - one program, many actions: dispatch, argument checks,
 * exit statuses and what reaches stderr, with a table of test actions (run
 * in a child) and with the real qcow2c-tm. */
#include "testlib.h"

#include <libgen.h>
#include <regex.h>
#include <sys/wait.h>

#include "fsutil.h"
#include "multicall.h"
#include "run.h"
#include "version.h"
#include "xml.h"

TestSuite(multicall, .timeout = 60);

/* ---- the test table ---- */

static int act_echo(struct action_ctx *ctx)
{
    printf("%s id=%d argc=%d", ctx->name, ctx->id, ctx->argc);
    for (int i = 0; i < ctx->argc; i++)
        printf(" [%s]", ctx->argv[i]);
    printf("\n");
    return 0;
}

static int act_fail(struct action_ctx *ctx)
{
    (void)ctx;
    return fail("it broke: %s", "disk.0");
}

static int act_fail_silently(struct action_ctx *ctx)
{
    (void)ctx;
    return -1;
}

static int act_fail_late(struct action_ctx *ctx)
{
    (void)ctx;
    fail("late reason");
    return 0;
}

static int act_noisy(struct action_ctx *ctx)
{
    (void)ctx;
    log_info("start");
    fail("first reason");
    fail("second reason");
    log_warn("cleaning up");
    return -1;
}

static int act_ds(struct action_ctx *ctx)
{
    char *id = xml_get(ctx->ds, "/DS_DRIVER_ACTION_DATA/IMAGE/ID");

    printf("%s\n", id ? id : "(none)");
    free(id);
    return 0;
}

static int act_fd(struct action_ctx *ctx)
{
    int fd = open("/dev/null", O_RDONLY);

    (void)ctx;
    printf("fd=%d\n", fd);
    return 0;
}

static int act_conf(struct action_ctx *ctx)
{
    (void)ctx;
    printf("path=%s timeout=%u run_default_timeout=%u\n", config_path() ? config_path() : "(none)",
           config_uint("TIMEOUT"), run_default_timeout);
    return 0;
}

static const struct action table[] = {
    { "clone", act_echo, 4, 4, 3, ACT_ID_IS_VM, "SRC_HOST:PATH DST_HOST:PATH VM_ID DS_ID",
      "copy a disk" },
    { "clone.ssh", act_echo, 4, 4, 3, ACT_ID_IS_VM, "SRC_HOST:PATH DST_HOST:PATH VM_ID DS_ID",
      "copy a disk, ssh mode" },
    { "cpds", act_echo, 5, 5, 4, ACT_ID_IS_VM, "SRC_HOST:PATH DST_PATH SNAP_ID VM_ID DS_ID",
      "save a disk" },
    { "monitor", act_echo, 1, -1, -1, 0, "[ARGS...] DS_ID", "id from the end" },
    { "noid", act_echo, 0, 2, 0, 0, "[A [B]]", "no id" },
    { "fails", act_fail, 0, 0, 0, 0, "", "fails with a reason" },
    { "fails_silently", act_fail_silently, 0, 0, 0, 0, "", "fails without a reason" },
    { "fails_late", act_fail_late, 0, 0, 0, 0, "", "records a reason, returns 0" },
    { "noisy", act_noisy, 1, 1, 1, ACT_ID_IS_VM, "VM_ID", "logs and fails twice" },
    { "ds", act_ds, 1, 1, 1, ACT_STDIN_DS, "IMAGE_ID < base64", "reads the DS message" },
    { "fdcheck", act_fd, 0, 0, 0, 0, "", "opens a file" },
    { "conf", act_conf, 0, 0, 0, 0, "", "prints the configuration it got" },
};

#define PROG "qcow2c-test"

struct result {
    int status; /* exit status */
    char *out, *err;
};

/* A child forked from Criterion's (threaded) worker exits without the
 * sanitizers' exit-time leak check, which would report the parent's memory
 * and print on the child's stderr. Registered last, runs first. */
static void quick_exit_child(int status, void *arg)
{
    (void)arg;
    fflush(NULL);
    _exit(status);
}

static char *read_back(FILE *f)
{
    struct sbuf sb = SBUF_INIT;

    cr_assert_eq(lseek(fileno(f), 0, SEEK_SET), 0);
    cr_assert_eq(sbuf_read_fd(&sb, fileno(f), 0), 0);
    fclose(f);
    return sbuf_detach(&sb);
}

/* Runs multicall_main(PROG, table, argv) in a child with `in` on stdin.
 * `close_stdin`: the child starts with fd 0 closed. */
static struct result run_mc_full(const char *in, size_t in_len, bool close_stdin,
                                 const char *const *args)
{
    FILE *fin = tmpfile(), *fout = tmpfile(), *ferr = tmpfile();
    struct result r;
    pid_t pid;
    int st, argc = 0;

    cr_assert(fin && fout && ferr);
    if (in_len)
        cr_assert_eq(write(fileno(fin), in, in_len), (ssize_t)in_len);
    cr_assert_eq(lseek(fileno(fin), 0, SEEK_SET), 0);
    while (args[argc])
        argc++;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char **argv = xcalloc((size_t)argc + 1, sizeof(*argv));

        for (int i = 0; i < argc; i++)
            argv[i] = xstrdup(args[i]);
        dup2(fileno(fin), 0);
        dup2(fileno(fout), 1);
        dup2(fileno(ferr), 2);
        if (close_stdin)
            close(0);
        on_exit(quick_exit_child, NULL);
        exit(multicall_main(PROG, table, ARRAY_SIZE(table), argc, argv));
    }
    fclose(fin);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "the child died of signal %d", WTERMSIG(st));
    r.status = WEXITSTATUS(st);
    r.out = read_back(fout);
    r.err = read_back(ferr);
    return r;
}

#define run_mc(...) run_mc_full(NULL, 0, false, (const char *const[]){ __VA_ARGS__, NULL })
#define run_mc_in(in, len, ...) \
    run_mc_full(in, len, false, (const char *const[]){ __VA_ARGS__, NULL })

static void result_free(struct result *r)
{
    free(r->out);
    free(r->err);
}

static char *conf_dir;

/* Every test gets a private, valid configuration through QCOW2C_CONF. */
static void setup(void)
{
    char *conf;

    conf_dir = test_tmpdir();
    conf = xasprintf("%s/qcow2c.conf", conf_dir);
    test_write_file(conf, "TIMEOUT=77\n");
    setenv("QCOW2C_CONF", conf, 1);
    free(conf);
}

TestSuite(multicall_table, .init = setup, .timeout = 60);

/* oned's reading of stderr (see test_log.c): the plain lines. */
static size_t plain_lines(const char *err, char **first_plain)
{
    regex_t re;
    const char *p = err;
    size_t n = 0;

    cr_assert_eq(regcomp(&re, "^(ERROR|INFO|WARN|DEBUG):[[:space:]]+([0-9]+)?[[:space:]]*(.*)$",
                         REG_EXTENDED | REG_NOSUB),
                 0);
    *first_plain = NULL;
    while (*p) {
        size_t len = strcspn(p, "\n");
        char *line = xstrndup(p, len);

        cr_assert_eq(p[len], '\n', "unterminated line '%s'", line);
        if (regexec(&re, line, 0, NULL, 0) != 0) {
            if (!n)
                *first_plain = xstrdup(line);
            n++;
        }
        free(line);
        p += len + 1;
    }
    regfree(&re);
    return n;
}

Test(multicall_table, explicit_action)
{
    struct result r =
        run_mc("/opt/bin/" PROG, "clone",
               "frontend:/var/lib/one//datastores/107/7884294dec91169f7f22cacffae86121",
               "node1:/var/lib/one//datastores/106/9/disk.0", "9", "107");

    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out,
                     "clone id=9 argc=4 "
                     "[frontend:/var/lib/one//datastores/107/7884294dec91169f7f22cacffae86121] "
                     "[node1:/var/lib/one//datastores/106/9/disk.0] [9] [107]\n");
    cr_assert_str_eq(r.err, "");
    result_free(&r);
}

Test(multicall_table, dispatch_by_argv0_basename)
{
    struct result r =
        run_mc("/var/lib/one/remotes/tm/qcow2c/clone", "node1:/a", "node1:/b", "10", "107");

    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "clone id=10 argc=4 [node1:/a] [node1:/b] [10] [107]\n");
    result_free(&r);

    r = run_mc("clone.ssh", "node1:/a", "node1:/b", "10", "107");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "clone.ssh id=10 argc=4 [node1:/a] [node1:/b] [10] [107]\n");
    result_free(&r);

    /* the link's name wins over an action-looking first argument */
    r = run_mc("/x/noid", "clone", "b");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "noid id=-1 argc=2 [clone] [b]\n");
    result_free(&r);
}

Test(multicall_table, wrong_argument_count_is_one_usage_line)
{
    struct result r = run_mc(PROG, "clone", "node1:/a");

    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.out, "", "the action did not run");
    cr_assert_str_eq(r.err, "clone: wrong number of arguments (1); usage: clone "
                            "SRC_HOST:PATH DST_HOST:PATH VM_ID DS_ID\n");
    result_free(&r);

    r = run_mc(PROG, "clone", "a", "b", "9", "107", "extra");
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.out, "");
    cr_assert(starts_with(r.err, "clone: wrong number of arguments (5); usage: "), "%s", r.err);
    cr_assert_eq(strchr(r.err, '\n') - r.err + 1, (long)strlen(r.err), "one line: %s", r.err);
    result_free(&r);

    r = run_mc("/remotes/tm/qcow2c/clone");
    cr_assert_eq(r.status, 2);
    cr_assert(starts_with(r.err, "clone: wrong number of arguments (0)"), "%s", r.err);
    result_free(&r);

    r = run_mc(PROG, "noid", "a", "b", "c");
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err, "noid: wrong number of arguments (3); usage: noid [A [B]]\n");
    result_free(&r);

    r = run_mc(PROG, "monitor");
    cr_assert_eq(r.status, 2, "%s", r.out);
    result_free(&r);
}

Test(multicall_table, bad_ids_are_usage_errors)
{
    static const char *const bad[] = { "x9", "-1",  "+9",         " 9",  "9 ",      "9x",
                                       "",   "0x9", "2147483648", "1e3", "9;reboot" };

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct result r = run_mc(PROG, "clone", "node1:/a", "node1:/b", bad[i], "107");
        char *want = xasprintf("clone: '%s' is not a valid id; usage: clone SRC_HOST:PATH "
                               "DST_HOST:PATH VM_ID DS_ID\n",
                               bad[i]);

        cr_assert_eq(r.status, 2, "VM id '%s' accepted: %s", bad[i], r.out);
        cr_assert_str_eq(r.out, "");
        cr_assert_str_eq(r.err, want);
        free(want);
        result_free(&r);
    }
}

Test(multicall_table, id_edge_values)
{
    struct result r = run_mc(PROG, "clone", "a", "b", "0", "107");

    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(starts_with(r.out, "clone id=0 "), "%s", r.out);
    result_free(&r);
    r = run_mc(PROG, "clone", "a", "b", "2147483647", "107");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(starts_with(r.out, "clone id=2147483647 "), "%s", r.out);
    result_free(&r);
}

/* cpds gets SNAP_ID -1 from oned (tm/cpds/1/argv): a plain argument. */
Test(multicall_table, minus_one_is_an_ordinary_argument)
{
    struct result r =
        run_mc(PROG, "cpds", "node1:/var/lib/one//datastores/106/9/disk.0",
               "/var/lib/one//datastores/107/f76f39ad9e116131f25bc30a7e4514a1", "-1", "9", "107");

    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "cpds id=9 argc=5 [node1:/var/lib/one//datastores/106/9/disk.0] "
                            "[/var/lib/one//datastores/107/f76f39ad9e116131f25bc30a7e4514a1] "
                            "[-1] [9] [107]\n");
    cr_assert_str_eq(r.err, "");
    result_free(&r);

    /* and as the first argument, where an option parser would choke */
    r = run_mc(PROG, "noid", "-1", "--help");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "noid id=-1 argc=2 [-1] [--help]\n");
    result_free(&r);
}

Test(multicall_table, id_counted_from_the_end)
{
    struct result r = run_mc(PROG, "monitor", "x", "-1", "105");

    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "monitor id=105 argc=3 [x] [-1] [105]\n");
    result_free(&r);
    r = run_mc(PROG, "monitor", "105", "x");
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "'x' is not a valid id"), "%s", r.err);
    result_free(&r);
}

Test(multicall_table, list_prints_exactly_the_table)
{
    struct result r = run_mc(PROG, "--list");
    struct sbuf want = SBUF_INIT;

    for (size_t i = 0; i < ARRAY_SIZE(table); i++)
        sbuf_addf(&want, "%s\n", table[i].name);
    cr_assert_eq(r.status, 0);
    cr_assert_str_eq(r.out, want.buf);
    cr_assert_str_eq(r.err, "");
    sbuf_release(&want);
    result_free(&r);
}

Test(multicall_table, help_and_version)
{
    struct result r = run_mc(PROG, "--help");

    cr_assert_eq(r.status, 0);
    cr_assert(starts_with(r.out, "usage: " PROG " ACTION ARGS..."), "%s", r.out);
    for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
        cr_assert(strstr(r.out, table[i].name), "%s missing from --help", table[i].name);
        cr_assert(strstr(r.out, table[i].summary), "%s", table[i].summary);
    }
    cr_assert_str_eq(r.err, "");
    result_free(&r);

    r = run_mc(PROG, "-h");
    cr_assert_eq(r.status, 0);
    cr_assert(starts_with(r.out, "usage: "));
    result_free(&r);

    r = run_mc(PROG);
    cr_assert_eq(r.status, 2, "no action is a usage error");
    cr_assert(starts_with(r.out, "usage: "));
    result_free(&r);

    r = run_mc(PROG, "--version");
    cr_assert_eq(r.status, 0);
    cr_assert_str_eq(r.out, PROG " " QCOW2C_VERSION "\n");
    result_free(&r);
}

Test(multicall_table, no_argv_at_all)
{
    struct result r = run_mc_full(NULL, 0, false, (const char *const[]){ NULL });

    cr_assert_eq(r.status, 2);
    cr_assert(starts_with(r.out, "usage: " PROG), "%s", r.out);
    result_free(&r);
}

Test(multicall_table, unknown_action)
{
    struct result r = run_mc("/x/" PROG, "nope", "1");

    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.out, "");
    cr_assert_str_eq(r.err, PROG ": unknown action 'nope' (see " PROG " --help)\n");
    result_free(&r);

    /* an action name must match exactly */
    r = run_mc(PROG, "CLONE", "a", "b", "9", "107");
    cr_assert_eq(r.status, 2);
    result_free(&r);
    r = run_mc(PROG, "clone.ss", "a", "b", "9", "107");
    cr_assert_eq(r.status, 2);
    result_free(&r);
}

Test(multicall_table, failing_action_prints_one_plain_line)
{
    struct result r = run_mc(PROG, "fails");
    char *plain;

    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, "it broke: disk.0\n");
    cr_assert_eq(plain_lines(r.err, &plain), 1);
    free(plain);
    result_free(&r);
}

Test(multicall_table, failing_without_reason_names_the_action)
{
    struct result r = run_mc("/x/fails_silently");

    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, "fails_silently failed\n");
    result_free(&r);
}

Test(multicall_table, a_recorded_reason_fails_even_with_0)
{
    struct result r = run_mc(PROG, "fails_late");

    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, "late reason\n");
    result_free(&r);
}

Test(multicall_table, log_lines_carry_the_vm_id_and_one_plain_line)
{
    struct result r = run_mc(PROG, "noisy", "42");
    char *plain;

    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, "INFO: 42 noisy: start\n"
                            "ERROR: 42 noisy: second reason\n"
                            "WARN: 42 noisy: cleaning up\n"
                            "first reason\n");
    cr_assert_eq(plain_lines(r.err, &plain), 1);
    cr_assert_str_eq(plain, "first reason");
    free(plain);
    result_free(&r);
}

Test(multicall_table, ds_message_on_stdin)
{
    char *path = test_fixture("ds/cp/1/stdin");
    struct sbuf in = SBUF_INIT;
    struct result r;

    cr_assert_eq(sbuf_read_file(&in, path, 0), 0);
    r = run_mc_in(in.buf, in.len, "/var/lib/one/remotes/datastore/qcow2c/ds", "19");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "19\n");
    cr_assert_str_eq(r.err, "");
    result_free(&r);
    sbuf_release(&in);
    free(path);
}

Test(multicall_table, bad_ds_message_is_one_reason)
{
    struct result r = run_mc(PROG, "ds", "19");
    char *plain;

    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.out, "", "the action did not run");
    cr_assert_str_eq(r.err, "no driver message on stdin (expected base64 DS_DRIVER_ACTION_DATA)\n");
    result_free(&r);

    r = run_mc_in("PFZNLz4=", 8, PROG, "ds", "19"); /* <VM/> */
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.out, "");
    cr_assert_eq(plain_lines(r.err, &plain), 1, "%s", r.err);
    cr_assert(strstr(plain, "the root element is <VM>"), "%s", plain);
    free(plain);
    result_free(&r);
}

Test(multicall_table, closed_stdin_never_becomes_a_file)
{
    struct result r = run_mc_full(NULL, 0, true, (const char *const[]){ PROG, "fdcheck", NULL });
    int fd = -1;

    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(sscanf(r.out, "fd=%d", &fd), 1, "%s", r.out);
    cr_assert_geq(fd, 3, "a file opened by the action became fd %d", fd);
    result_free(&r);
}

Test(multicall_table, configuration_reaches_the_action)
{
    struct result r = run_mc(PROG, "conf");
    char *want = xasprintf("path=%s/qcow2c.conf timeout=77 run_default_timeout=77\n", conf_dir);

    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, want);
    free(want);
    result_free(&r);
}

Test(multicall_table, bad_configuration_is_one_reason)
{
    char *conf = xasprintf("%s/bad.conf", conf_dir);
    char *want = xasprintf("%s line 2: unknown setting NO_SUCH_KEY\n", conf);
    struct result r;

    test_write_file(conf, "TIMEOUT=5\nNO_SUCH_KEY=1\n");
    setenv("QCOW2C_CONF", conf, 1);
    r = run_mc(PROG, "clone", "a", "b", "9", "107");
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.out, "");
    cr_assert_str_eq(r.err, want);
    result_free(&r);

    /* usage errors are found first */
    r = run_mc(PROG, "clone", "a");
    cr_assert_eq(r.status, 2);
    result_free(&r);
    free(conf);
    free(want);
}

/* <root>/remotes/{tm/qcow2c/<name>, etc/qcow2c/qcow2c.conf}: returns root. */
static char *fake_remotes(void)
{
    char *root = test_tmpdir();
    char *p = xasprintf("%s/remotes/tm/qcow2c", root);
    char *c = xasprintf("%s/remotes/etc/qcow2c", root);
    char *f = xasprintf("%s/qcow2c.conf", c);

    cr_assert_eq(mkdir_p(p, 0755), 0);
    cr_assert_eq(mkdir_p(c, 0755), 0);
    test_write_file(f, "TIMEOUT=88\n");
    free(p);
    free(c);
    free(f);
    return root;
}

Test(multicall_table, configuration_next_to_the_invoked_link)
{
    char *root = fake_remotes();
    char *argv0 = xasprintf("%s/remotes/tm/qcow2c/conf", root);
    char *want = xasprintf("path=%s/remotes/tm/qcow2c/../../etc/qcow2c/qcow2c.conf timeout=88 "
                           "run_default_timeout=88\n",
                           root);
    struct result r;

    unsetenv("QCOW2C_CONF");
    r = run_mc(argv0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, want);
    result_free(&r);
    free(argv0);
    free(want);
    free(root);
}

/* BUG (multicall.c, reported): `PROG ACTION ARGS` loads the configuration
 * for argv[-1] of the action's arguments, i.e. the action NAME ("conf",
 * no '/'), so config_load falls back to /proc/self/exe and ignores the
 * qcow2c.conf next to the program that was run; --config (which uses
 * argv[0]) shows a different file than the action then uses. */
Test(multicall_table, configuration_next_to_the_program_for_explicit_actions)
{
    char *root = fake_remotes();
    char *argv0 = xasprintf("%s/remotes/tm/qcow2c/" PROG, root);
    char *want = xasprintf("path=%s/remotes/tm/qcow2c/../../etc/qcow2c/qcow2c.conf timeout=88 "
                           "run_default_timeout=88\n",
                           root);
    struct result r;

    unsetenv("QCOW2C_CONF");
    r = run_mc(argv0, "conf");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, want);
    result_free(&r);
    free(argv0);
    free(want);
    free(root);
}

Test(multicall_table, config_option_prints_the_file_used)
{
    char *root = fake_remotes();
    char *argv0 = xasprintf("%s/remotes/tm/qcow2c/" PROG, root);
    char *first = xasprintf("# %s/remotes/tm/qcow2c/../../etc/qcow2c/qcow2c.conf\n", root);
    struct result r;

    unsetenv("QCOW2C_CONF");
    r = run_mc(argv0, "--config");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(starts_with(r.out, first), "%s", r.out);
    cr_assert(strstr(r.out, "\nTIMEOUT=\"88\"\n"), "%s", r.out);
    result_free(&r);
    free(argv0);
    free(first);
    free(root);
}

/* ---- the real programs ---- */

static char *program(const char *name)
{
    char *exe = realpath("/proc/self/exe", NULL);
    char *p;

    cr_assert_not_null(exe);
    p = xasprintf("%s/bin/%s", dirname(dirname(exe)), name);
    free(exe);
    cr_assert_eq(access(p, X_OK), 0, "%s is missing: build the programs first (make all)", p);
    return p;
}

static struct result run_prog(const char *const *argv)
{
    struct cmd c = CMD_INIT;
    struct result r;

    strvec_pushv(&c.args, argv);
    cr_assert_eq(cmd_run_status(&c), 0, "%s", fail_reason());
    r.status = c.status;
    r.out = xstrdup(c.out.buf);
    r.err = xstrdup(c.err.buf);
    cmd_release(&c);
    return r;
}

Test(multicall, real_tm_program_options)
{
    char *tm = program("qcow2c-tm");
    struct result r;

    r = run_prog((const char *const[]){ tm, "--version", NULL });
    cr_assert_eq(r.status, 0);
    cr_assert_str_eq(r.out, "qcow2c-tm " QCOW2C_VERSION "\n");
    result_free(&r);

    r = run_prog((const char *const[]){ tm, "--help", NULL });
    cr_assert_eq(r.status, 0);
    cr_assert(starts_with(r.out, "usage: qcow2c-tm ACTION ARGS..."), "%s", r.out);
    result_free(&r);

    r = run_prog((const char *const[]){ tm, NULL });
    cr_assert_eq(r.status, 2);
    result_free(&r);

    r = run_prog((const char *const[]){ tm, "no_such_action", "1", NULL });
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err, "qcow2c-tm: unknown action 'no_such_action' (see qcow2c-tm --help)\n");
    result_free(&r);

    r = run_prog((const char *const[]){ tm, "--list", NULL });
    cr_assert_eq(r.status, 0);
    cr_assert_str_eq(r.err, "");
    /* one name a line, each a word install.sh can make a link of */
    for (const char *p = r.out; *p; p++)
        cr_assert(strchr("abcdefghijklmnopqrstuvwxyz0123456789_.\n", *p), "'%s'", r.out);
    result_free(&r);
    free(tm);
}

/* Every name qcow2c-tm --list prints dispatches through a link of that
 * name, and a link with no arguments is a one-line usage error. */
Test(multicall, real_tm_links_dispatch)
{
    char *tm = program("qcow2c-tm");
    char *dir = test_tmpdir();
    struct result list = run_prog((const char *const[]){ tm, "--list", NULL });
    const char *p = list.out;

    cr_assert_eq(list.status, 0);
    while (*p) {
        size_t n = strcspn(p, "\n");
        char *name = xstrndup(p, n);
        char *link = xasprintf("%s/%s", dir, name);
        struct result r;

        cr_assert_eq(symlink(tm, link), 0);
        r = run_prog((const char *const[]){ link, NULL });
        if (r.status == 2) {
            cr_assert(starts_with(r.err, name), "%s: %s", name, r.err);
            cr_assert_eq(strchr(r.err, '\n') - r.err + 1, (long)strlen(r.err), "%s", r.err);
        }
        cr_assert(!starts_with(r.out, "usage: qcow2c-tm"), "'%s' was not dispatched", name);
        result_free(&r);
        free(link);
        free(name);
        p += n + (p[n] == '\n');
    }
    result_free(&list);
    free(dir);
    free(tm);
}
