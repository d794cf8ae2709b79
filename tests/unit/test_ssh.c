/*
 * test_ssh.c - quoting and the ssh session, through a real sshd and the
 * remote user's real shell (tests/lib/sshd.sh, started by run-unit.sh).
 */
#include "testlib.h"

#include "quote.h"
#include "ssh.h"

static void setup(void)
{
    test_sshd_dir();
    test_config(NULL);
}

TestSuite(ssh, .init = setup, .timeout = 60);

/* Strings that break naive quoting. */
static const char *const hostile[] = {
    "plain",
    "",
    "two words",
    "$(touch /tmp/qcow2c-pwned)",
    "`touch /tmp/qcow2c-pwned`",
    "a;touch /tmp/qcow2c-pwned",
    "it's",
    "''",
    "'\\''",
    "\"double\" \\back\\slash",
    "new\nline",
    "tab\there",
    "*",
    "~root",
    "$HOME ${PATH} $$ $1",
    "!bang !! !-1",
    "-o ProxyCommand=touch /tmp/qcow2c-pwned",
    "&& || | > < >> 2>&1 &",
    "#comment",
    "\x01\x02\x1b[31mred\x7f",
    "utf8: \xc3\xa9\xe2\x82\xac",
    "trailing backslash\\",
    NULL,
};

static void check_roundtrip(const struct sbuf *out)
{
    const char *p = out->buf;
    size_t i;

    for (i = 0; hostile[i]; i++) {
        size_t n = strlen(hostile[i]);

        cr_assert(p + n < out->buf + out->len + 1, "output too short at %zu", i);
        cr_assert(memcmp(p, hostile[i], n) == 0 && p[n] == '\0', "word %zu changed: '%s'", i,
                  p);
        p += n + 1;
    }
    cr_assert_eq((size_t)(p - out->buf), out->len, "extra output");
    cr_assert(access("/tmp/qcow2c-pwned", F_OK) < 0, "a hostile word was executed");
}

Test(ssh, quote_roundtrip_through_local_shell)
{
    struct sbuf script = SBUF_INIT;
    struct cmd c = CMD_INIT;

    sbuf_adds(&script, "printf '%s\\0' ");
    sq_quote_argv(&script, hostile);
    strvec_pushl(&c.args, "sh", "-c", script.buf, NULL);
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    check_roundtrip(&c.out);
    cmd_release(&c);
    sbuf_release(&script);
}

Test(ssh, quote_every_byte)
{
    char word[256];
    const char *argv[] = { "printf", "%s", word, NULL };
    struct rsh *r = rsh_open("node1");
    struct cmd c = CMD_INIT;

    cr_assert_not_null(r, "%s", fail_reason());
    for (int i = 1; i < 256; i++)
        word[i - 1] = (char)i;
    word[255] = '\0';
    strvec_pushv(&c.args, argv);
    cr_assert_eq(rsh_run(r, &c), 0, "%s", fail_reason());
    cr_assert_eq(c.out.len, 255);
    cr_assert(memcmp(c.out.buf, word, 255) == 0);
    cmd_release(&c);
    rsh_close(r);
}

Test(ssh, hostile_words_survive_the_session)
{
    struct rsh *r = rsh_open("node1");
    struct cmd c = CMD_INIT;

    cr_assert_not_null(r, "%s", fail_reason());
    strvec_pushl(&c.args, "printf", "%s\\0", NULL);
    strvec_pushv(&c.args, hostile);
    cr_assert_eq(rsh_run(r, &c), 0, "%s", fail_reason());
    check_roundtrip(&c.out);
    cmd_release(&c);
    rsh_close(r);
}

Test(ssh, hostile_words_survive_one_shot_ssh)
{
    struct cmd c = CMD_INIT;
    struct strvec remote = STRVEC_INIT;

    strvec_pushl(&remote, "printf", "%s\\0", NULL);
    strvec_pushv(&remote, hostile);
    cr_assert_eq(ssh_cmd(&c, "node1", remote.v), 0, "%s", fail_reason());
    cr_assert_eq(cmd_run(&c), 0, "%s", fail_reason());
    check_roundtrip(&c.out);
    cmd_release(&c);
    strvec_clear(&remote);
}

Test(ssh, one_connection_carries_many_commands)
{
    struct rsh *r = rsh_open("node1");
    struct sbuf first = SBUF_INIT;

    cr_assert_not_null(r, "%s", fail_reason());
    for (int i = 0; i < 30; i++) {
        struct cmd c = CMD_INIT;

        strvec_pushl(&c.args, "sh", "-c", "echo \"$SSH_CLIENT\"", NULL);
        cr_assert_eq(rsh_run(r, &c), 0, "%s", fail_reason());
        if (i == 0)
            sbuf_adds(&first, c.out.buf);
        else
            cr_assert_str_eq(c.out.buf, first.buf, "a new connection was made");
        cmd_release(&c);
    }
    rsh_close(r);
    sbuf_release(&first);
}

Test(ssh, output_without_trailing_newline_and_empty_output)
{
    struct rsh *r = rsh_open("node1");
    struct cmd c = CMD_INIT;

    cr_assert_not_null(r, "%s", fail_reason());
    strvec_pushl(&c.args, "printf", "no newline", NULL);
    cr_assert_eq(rsh_run(r, &c), 0, "%s", fail_reason());
    cr_assert_str_eq(c.out.buf, "no newline");
    cmd_release(&c);
    strvec_pushl(&c.args, "true", NULL);
    cr_assert_eq(rsh_run(r, &c), 0, "%s", fail_reason());
    cr_assert_eq(c.out.len, 0);
    cr_assert_eq(c.err.len, 0);
    cmd_release(&c);
    rsh_close(r);
}

Test(ssh, remote_failure_status_and_stderr)
{
    struct rsh *r = rsh_open("node1");
    struct cmd c = CMD_INIT;

    cr_assert_not_null(r, "%s", fail_reason());
    strvec_pushl(&c.args, "sh", "-c", "echo out; echo 'disk full' >&2; exit 7", NULL);
    cr_assert_eq(rsh_run_status(r, &c), 0, "%s", fail_reason());
    cr_assert_eq(c.status, 7);
    cr_assert_str_eq(c.out.buf, "out\n");
    cr_assert_str_eq(c.err.buf, "disk full\n");
    cmd_release(&c);
    /* the session is still usable, and rsh_run turns the status into a reason */
    strvec_pushl(&c.args, "sh", "-c", "echo 'No space left on device' >&2; exit 1", NULL);
    cr_assert_eq(rsh_run(r, &c), -1);
    cr_assert(strstr(fail_reason(), "on node1"), "%s", fail_reason());
    cr_assert(strstr(fail_reason(), "No space left on device"), "%s", fail_reason());
    cmd_release(&c);
    rsh_close(r);
}

Test(ssh, environment_and_directory)
{
    struct rsh *r = rsh_open("node1");
    struct cmd c = CMD_INIT;

    cr_assert_not_null(r, "%s", fail_reason());
    strvec_pushl(&c.args, "sh", "-c", "echo \"$LC_ALL $MYVAR $(pwd)\"", NULL);
    strvec_push(&c.env, "MYVAR=it's set");
    c.dir = "/proc";
    cr_assert_eq(rsh_run(r, &c), 0, "%s", fail_reason());
    cr_assert_str_eq(c.out.buf, "C it's set /proc\n");
    cmd_release(&c);
    rsh_close(r);
}

Test(ssh, remote_command_cannot_read_our_commands)
{
    struct rsh *r = rsh_open("node1");
    struct cmd c = CMD_INIT;

    cr_assert_not_null(r, "%s", fail_reason());
    strvec_pushl(&c.args, "cat", NULL); /* would swallow the session if stdin leaked */
    cr_assert_eq(rsh_run(r, &c), 0, "%s", fail_reason());
    cr_assert_eq(c.out.len, 0);
    cmd_release(&c);
    strvec_pushl(&c.args, "echo", "still here", NULL);
    cr_assert_eq(rsh_run(r, &c), 0, "%s", fail_reason());
    cr_assert_str_eq(c.out.buf, "still here\n");
    cmd_release(&c);
    rsh_close(r);
}

Test(ssh, output_that_mimics_the_marker_is_data)
{
    struct rsh *r = rsh_open("node1");
    struct cmd c = CMD_INIT;

    cr_assert_not_null(r, "%s", fail_reason());
    strvec_pushl(&c.args, "printf", "\\n@qcow2c-0000 0\\n", NULL);
    cr_assert_eq(rsh_run(r, &c), 0, "%s", fail_reason());
    cr_assert_str_eq(c.out.buf, "\n@qcow2c-0000 0\n");
    cmd_release(&c);
    rsh_close(r);
}

Test(ssh, hung_command_is_bounded_and_kills_the_session)
{
    struct rsh *r = rsh_open("node1");
    struct cmd c = CMD_INIT;
    long long t0 = monotonic_ms();

    cr_assert_not_null(r, "%s", fail_reason());
    strvec_pushl(&c.args, "sleep", "60", NULL);
    c.timeout_s = 1;
    cr_assert_eq(rsh_run(r, &c), -1);
    cr_assert(c.timed_out);
    cr_assert(monotonic_ms() - t0 < 10000);
    cr_assert(strstr(fail_reason(), "did not finish within 1 s"), "%s", fail_reason());
    cmd_release(&c);
    fail_reset();
    strvec_pushl(&c.args, "true", NULL);
    cr_assert_eq(rsh_run(r, &c), -1);
    cr_assert(strstr(fail_reason(), "connection to node1 was lost"), "%s", fail_reason());
    cmd_release(&c);
    rsh_close(r);
}

Test(ssh, unreachable_host_is_one_clear_reason)
{
    struct rsh *r;

    test_config("SSH_OPTIONS=\"-o Port=1 -o HostName=127.0.0.1 -o StrictHostKeyChecking=no\"\n"
                "SSH_CONNECT_TIMEOUT=3");
    r = rsh_open("unreachable-host");
    cr_assert_null(r);
    cr_assert(strstr(fail_reason(), "cannot reach host unreachable-host over ssh"), "%s",
              fail_reason());
    cr_assert(strstr(fail_reason(), "Connection refused"), "%s", fail_reason());
    cr_assert_null(strchr(fail_reason(), '\n'));
}

Test(ssh, option_injection_in_host_is_refused)
{
    cr_assert_null(rsh_open("-oProxyCommand=touch /tmp/qcow2c-pwned"));
    cr_assert(strstr(fail_reason(), "is not a valid host name"), "%s", fail_reason());
    cr_assert(!ssh_host_valid("node1 -p 22"));
    cr_assert(!ssh_host_valid("[::1]"));
    cr_assert(!ssh_host_valid(""));
    cr_assert(ssh_host_valid("node-1.example.org"));
    cr_assert(ssh_host_valid("10.0.0.7"));
}

Test(ssh, remote_commands_carry_their_own_time_limit)
{
    struct rsh *r = rsh_open("node1");
    struct cmd c = CMD_INIT;

    cr_assert_not_null(r, "%s", fail_reason());
    /* An orphan of a killed action must not outlive its limit on the host:
     * the remote command runs under timeout(1), a little above ours. */
    strvec_pushl(&c.args, "sh", "-c", "tr '\\0' ' ' < /proc/$PPID/cmdline", NULL);
    c.timeout_s = 7;
    cr_assert_eq(rsh_run(r, &c), 0, "%s", fail_reason());
    cr_assert(starts_with(c.out.buf, "timeout -k 10 12 sh -c "), "parent: '%s'", c.out.buf);
    cmd_release(&c);
    rsh_close(r);
}
