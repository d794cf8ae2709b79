/* test_run.c - the run-command API against real programs. */
#include "testlib.h"

#include <signal.h>

#include "run.h"

static void setup(void)
{
    test_config(NULL);
}

TestSuite(run, .init = setup, .timeout = 60);

/* Alive and not a zombie: this machine's PID 1 may reap orphans late. */
static bool process_alive(pid_t pid)
{
    char *path = xasprintf("/proc/%d/stat", (int)pid);
    struct sbuf st = SBUF_INIT;
    bool alive = sbuf_read_file(&st, path, 0) == 0;
    const char *paren = strrchr(st.buf, ')');

    if (alive && paren && paren[1] == ' ' && paren[2] == 'Z')
        alive = false;
    sbuf_release(&st);
    free(path);
    return alive;
}

Test(run, captures_stdout_and_status)
{
    struct cmd c = CMD_INIT;

    strvec_pushl(&c.args, "printf", "%s\\n", "hello", NULL);
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    cr_assert_str_eq(c.out.buf, "hello\n");
    cr_assert_eq(c.status, 0);
    cmd_release(&c);
}

Test(run, nonzero_exit_is_one_reason_with_stderr_tail)
{
    struct cmd c = CMD_INIT;

    strvec_pushl(&c.args, "sh", "-c", "echo first >&2; echo 'the real error' >&2; exit 3", NULL);
    cr_assert_eq(cmd_run(&c), -1);
    cr_assert_eq(c.status, 3);
    cr_assert(strstr(fail_reason(), "failed with exit code 3"), "%s", fail_reason());
    cr_assert(strstr(fail_reason(), "the real error"), "%s", fail_reason());
    cr_assert_null(strchr(fail_reason(), '\n'), "reason must be one line");
    cmd_release(&c);
}

Test(run, run_status_leaves_judgement_to_caller)
{
    struct cmd c = CMD_INIT;

    strvec_pushl(&c.args, "false", NULL);
    cr_assert_eq(cmd_run_status(&c), 0);
    cr_assert_eq(c.status, 1);
    cr_assert(!failed());
    cmd_release(&c);
}

Test(run, exec_failure_is_reported)
{
    struct cmd c = CMD_INIT;

    strvec_pushl(&c.args, "qcow2c-no-such-program", "x", NULL);
    cr_assert_eq(cmd_run(&c), -1);
    cr_assert(strstr(fail_reason(), "cannot run 'qcow2c-no-such-program x'"), "%s",
              fail_reason());
    cr_assert(strstr(fail_reason(), "No such file or directory"), "%s", fail_reason());
    cmd_release(&c);
}

Test(run, death_by_signal_is_named)
{
    struct cmd c = CMD_INIT;

    strvec_pushl(&c.args, "sh", "-c", "kill -KILL $$", NULL);
    cr_assert_eq(cmd_run(&c), -1);
    cr_assert_eq(c.status, 128 + SIGKILL);
    cr_assert(strstr(fail_reason(), "killed by signal 9"), "%s", fail_reason());
    cmd_release(&c);
}

Test(run, timeout_kills_the_whole_group)
{
    struct cmd c = CMD_INIT;
    char *dir = test_tmpdir();
    char *pidfile = xasprintf("%s/grandchild", dir);
    char *script = xasprintf("sleep 300 & echo $! > '%s'; wait", pidfile);
    long long t0 = monotonic_ms();
    struct sbuf pid = SBUF_INIT;

    strvec_pushl(&c.args, "sh", "-c", script, NULL);
    c.timeout_s = 1;
    cr_assert_eq(cmd_run(&c), -1);
    cr_assert(c.timed_out);
    cr_assert(monotonic_ms() - t0 < 8000, "took %lld ms", monotonic_ms() - t0);
    cr_assert(strstr(fail_reason(), "did not finish within 1 s"), "%s", fail_reason());
    cr_assert_eq(sbuf_read_file(&pid, pidfile, 0), 0);
    sbuf_rtrim(&pid);
    usleep(300000);
    cr_assert(!process_alive((pid_t)strtol(pid.buf, NULL, 10)), "grandchild %s survived",
              pid.buf);
    cmd_release(&c);
    sbuf_release(&pid);
    free(script);
    free(pidfile);
    free(dir);
}

Test(run, stdin_data_reaches_the_child)
{
    struct cmd c = CMD_INIT;
    struct sbuf big = SBUF_INIT;

    for (int i = 0; i < 100000; i++)
        sbuf_addf(&big, "line %d\n", i);
    strvec_pushl(&c.args, "cat", NULL);
    c.in = big.buf;
    c.in_len = big.len;
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    cr_assert_eq(c.out.len, big.len);
    cr_assert(memcmp(c.out.buf, big.buf, big.len) == 0);
    cmd_release(&c);
    sbuf_release(&big);
}

Test(run, child_that_ignores_stdin_does_not_hang_us)
{
    struct cmd c = CMD_INIT;
    struct sbuf big = SBUF_INIT;

    sbuf_grow(&big, 1 << 20);
    memset(big.buf, 'x', 1 << 20);
    big.len = 1 << 20;
    strvec_pushl(&c.args, "true", NULL);
    c.in = big.buf;
    c.in_len = big.len;
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    cmd_release(&c);
    sbuf_release(&big);
}

Test(run, environment_is_minimal)
{
    struct cmd c = CMD_INIT;

    setenv("QCOW2C_SECRET_FROM_PARENT", "leak", 1);
    setenv("LANG", "de_DE.UTF-8", 1);
    strvec_pushl(&c.args, "env", NULL);
    strvec_push(&c.env, "EXTRA=1");
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    cr_assert(strstr(c.out.buf, "LC_ALL=C\n"));
    cr_assert(strstr(c.out.buf, "LANG=C\n"));
    cr_assert(strstr(c.out.buf, "EXTRA=1\n"));
    cr_assert(strstr(c.out.buf, "PATH="));
    cr_assert_null(strstr(c.out.buf, "QCOW2C_SECRET"), "%s", c.out.buf);
    cmd_release(&c);
}

Test(run, only_std_descriptors_are_inherited)
{
    struct cmd c = CMD_INIT;
    int leak = open("/dev/null", O_RDONLY); /* deliberately without O_CLOEXEC */

    cr_assert(leak > 2);
    strvec_pushl(&c.args, "sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '", NULL);
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    /* 0 1 2 and the fd ls itself opens for the directory */
    cr_assert_str_eq(c.out.buf, "0 1 2 3 ", "got '%s'", c.out.buf);
    close(leak);
    cmd_release(&c);
}

Test(run, output_limit_fails_cleanly)
{
    struct cmd c = CMD_INIT;

    strvec_pushl(&c.args, "sh", "-c", "yes | head -c 100000", NULL);
    c.out_max = 1000;
    cr_assert_eq(cmd_run(&c), -1);
    cr_assert(strstr(fail_reason(), "printed more than 1000 bytes"), "%s", fail_reason());
    cmd_release(&c);
}

Test(run, stdout_to_a_file)
{
    struct cmd c = CMD_INIT;
    char *dir = test_tmpdir();
    char *path = xasprintf("%s/out", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    struct sbuf got = SBUF_INIT;

    strvec_pushl(&c.args, "printf", "to file", NULL);
    c.out_fd = fd;
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    close(fd);
    cr_assert_eq(c.out.len, 0);
    cr_assert_eq(sbuf_read_file(&got, path, 0), 0);
    cr_assert_str_eq(got.buf, "to file");
    cmd_release(&c);
    sbuf_release(&got);
    free(path);
    free(dir);
}

Test(run, stderr_keeps_the_tail)
{
    struct cmd c = CMD_INIT;

    strvec_pushl(&c.args, "sh", "-c", "seq 1 100000 >&2; echo LAST >&2; exit 1", NULL);
    c.err_max = 100;
    cr_assert_eq(cmd_run(&c), -1);
    cr_assert(c.err.len <= 200);
    cr_assert(strstr(c.err.buf, "LAST"));
    cmd_release(&c);
}

Test(run, working_directory)
{
    struct cmd c = CMD_INIT;

    strvec_pushl(&c.args, "pwd", NULL);
    c.dir = "/proc";
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    cr_assert_str_eq(c.out.buf, "/proc\n");
    cmd_release(&c);
}

Test(run, render_quotes_only_when_needed)
{
    struct sbuf s = SBUF_INIT;
    const char *argv[] = { "qemu-img", "convert", "-O", "qcow2", "a b", "x\ny", NULL };

    cmd_render(&s, argv, 1000);
    cr_assert_str_eq(s.buf, "qemu-img convert -O qcow2 'a b' 'x y'");
    sbuf_release(&s);
}
