/* test_log.c - what an action prints on stderr, checked line by line the way
 * oned reads it (protocol §1.5). */
#include "testlib.h"

#include <regex.h>
#include <sys/wait.h>

TestSuite(log, .timeout = 30);

/* ---- stderr capture: fd 2 goes to a temporary file ---- */

static int saved_stderr = -1;
static FILE *capture_file;

static void capture_start(void)
{
    fflush(stderr);
    capture_file = tmpfile();
    cr_assert_not_null(capture_file);
    saved_stderr = dup(STDERR_FILENO);
    cr_assert_geq(saved_stderr, 0);
    cr_assert_eq(dup2(fileno(capture_file), STDERR_FILENO), STDERR_FILENO);
}

/* Returns what was written to stderr since capture_start (caller frees). */
static char *capture_end(void)
{
    struct sbuf sb = SBUF_INIT;

    fflush(stderr);
    cr_assert_eq(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
    close(saved_stderr);
    saved_stderr = -1;
    cr_assert_eq(lseek(fileno(capture_file), 0, SEEK_SET), 0);
    cr_assert_eq(sbuf_read_fd(&sb, fileno(capture_file), 0), 0);
    fclose(capture_file);
    capture_file = NULL;
    return sbuf_detach(&sb);
}

/* ---- oned's reading of a line (one_tm.rb / DriverExecHelper, 7.x) ----
 * Each line is stripped, then matched against
 *   ^(ERROR|INFO|WARN|DEBUG):\s+(\d+)?\s*(.*)$
 * Log lines become LOG <level> <id or -1> <msg>; other lines are glued into
 * the failure reason. */
struct oned_line {
    bool is_log;
    char level[8];
    long id; /* -1 when no number follows the colon */
    char msg[8192];
};

static void oned_parse(const char *line, struct oned_line *out)
{
    static const char re_text[] = "^(ERROR|INFO|WARN|DEBUG):[[:space:]]+([0-9]+)?[[:space:]]*(.*)$";
    regex_t re;
    regmatch_t m[4];
    char *s = xstrdup(line);
    char *start = s;
    size_t len;

    /* Ruby's String#strip: leading and trailing whitespace and NULs */
    while (*start && strchr(" \t\n\v\f\r", *start))
        start++;
    len = strlen(start);
    while (len && strchr(" \t\n\v\f\r", start[len - 1]))
        start[--len] = '\0';

    cr_assert_eq(regcomp(&re, re_text, REG_EXTENDED), 0);
    memset(out, 0, sizeof(*out));
    out->id = -1;
    if (regexec(&re, start, 4, m, 0) == 0) {
        out->is_log = true;
        snprintf(out->level, sizeof(out->level), "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
                 start + m[1].rm_so);
        if (m[2].rm_so >= 0)
            out->id = strtol(start + m[2].rm_so, NULL, 10);
        snprintf(out->msg, sizeof(out->msg), "%.*s", (int)(m[3].rm_eo - m[3].rm_so),
                 start + m[3].rm_so);
    } else {
        snprintf(out->msg, sizeof(out->msg), "%s", start);
    }
    regfree(&re);
    free(s);
}

/* Splits captured output into lines; each must end with '\n'. */
static void split_lines(const char *text, struct strvec *out)
{
    const char *p = text;

    while (*p) {
        const char *nl = strchr(p, '\n');

        cr_assert_not_null(nl, "last line is not terminated: '%s'", p);
        char *line = xstrndup(p, (size_t)(nl - p));
        strvec_push(out, line);
        free(line);
        p = nl + 1;
    }
}

/* Asserts that the output is exactly `n` lines and returns them. */
static void lines_of(const char *text, size_t n, struct strvec *out)
{
    split_lines(text, out);
    cr_assert_eq(out->nr, n, "expected %zu lines, got %zu: '%s'", n, out->nr, text);
}

Test(log, info_with_vm_id_goes_to_that_vm)
{
    struct oned_line ol;
    char *out;

    log_setup("clone", 42);
    capture_start();
    log_info("copying %s", "disk.0");
    out = capture_end();
    cr_assert_str_eq(out, "INFO: 42 clone: copying disk.0\n");
    oned_parse(out, &ol);
    cr_assert(ol.is_log);
    cr_assert_str_eq(ol.level, "INFO");
    cr_assert_eq(ol.id, 42);
    cr_assert_str_eq(ol.msg, "clone: copying disk.0");
    free(out);
}

Test(log, info_without_vm_id_goes_to_oned_log)
{
    struct oned_line ol;
    char *out;

    log_setup("cp", -1);
    capture_start();
    log_info("msg");
    out = capture_end();
    cr_assert_str_eq(out, "INFO: cp: msg\n");
    oned_parse(out, &ol);
    cr_assert(ol.is_log);
    cr_assert_eq(ol.id, -1);
    cr_assert_str_eq(ol.msg, "cp: msg");
    free(out);
}

Test(log, vm_id_zero_is_a_vm)
{
    struct oned_line ol;
    char *out;

    log_setup("delete", 0);
    capture_start();
    log_warn("w");
    out = capture_end();
    cr_assert_str_eq(out, "WARN: 0 delete: w\n");
    oned_parse(out, &ol);
    cr_assert_eq(ol.id, 0);
    free(out);
}

Test(log, every_level_has_its_prefix)
{
    static const char *const want[] = { "ERROR", "WARN", "INFO", "DEBUG" };
    struct strvec lines = STRVEC_INIT;
    char *out;

    log_setup("mv", 7);
    log_enable_debug(true);
    cr_assert(log_debug_enabled());
    capture_start();
    log_error("e");
    log_warn("w");
    log_info("i");
    log_debug("d");
    out = capture_end();
    lines_of(out, 4, &lines);
    for (size_t i = 0; i < 4; i++) {
        struct oned_line ol;

        oned_parse(lines.v[i], &ol);
        cr_assert(ol.is_log, "'%s'", lines.v[i]);
        cr_assert_str_eq(ol.level, want[i]);
        cr_assert_eq(ol.id, 7);
    }
    cr_assert_str_eq(lines.v[3], "DEBUG: 7 mv: d");
    strvec_clear(&lines);
    free(out);
}

Test(log, debug_is_silent_unless_enabled)
{
    char *out;
    int evaluated = 0;

    log_setup("mv", 7);
    log_enable_debug(false);
    capture_start();
    log_debug("d %d", ++evaluated);
    out = capture_end();
    cr_assert_str_eq(out, "");
    cr_assert_eq(evaluated, 0, "arguments of a disabled debug line are not evaluated");
    free(out);
}

Test(log, set_vmid_applies_to_later_lines)
{
    struct strvec lines = STRVEC_INIT;
    char *out;

    log_setup("clone", -1);
    capture_start();
    log_info("a");
    log_set_vmid(9);
    log_info("b");
    log_set_vmid(-1);
    log_info("c");
    out = capture_end();
    lines_of(out, 3, &lines);
    cr_assert_str_eq(lines.v[0], "INFO: clone: a");
    cr_assert_str_eq(lines.v[1], "INFO: 9 clone: b");
    cr_assert_str_eq(lines.v[2], "INFO: clone: c");
    strvec_clear(&lines);
    free(out);
}

/* A message that starts with digits must not be read as a VM id. */
Test(log, leading_digits_in_a_message_are_not_a_vm_id)
{
    struct oned_line ol;
    char *out;

    log_setup("cp", -1);
    capture_start();
    log_error("123 bytes copied");
    out = capture_end();
    cr_assert_str_eq(out, "ERROR: cp: 123 bytes copied\n");
    oned_parse(out, &ol);
    cr_assert(ol.is_log);
    cr_assert_eq(ol.id, -1, "oned would send this to VM %ld", ol.id);
    free(out);

    log_setup("clone", 5);
    capture_start();
    log_info("42 is not the VM");
    out = capture_end();
    oned_parse(out, &ol);
    cr_assert_eq(ol.id, 5);
    cr_assert_str_eq(ol.msg, "clone: 42 is not the VM");
    free(out);
}

Test(log, control_characters_become_spaces)
{
    struct strvec lines = STRVEC_INIT;
    char *out;

    log_setup("cp", -1);
    capture_start();
    log_info("a\nb\rc\td\x1b[31me\x7f"
             "f\x01g");
    log_error("%s", "line one\nINFO: 3 forged line\n");
    out = capture_end();
    lines_of(out, 2, &lines);
    cr_assert_str_eq(lines.v[0], "INFO: cp: a b c d [31me f g");
    cr_assert_str_eq(lines.v[1], "ERROR: cp: line one INFO: 3 forged line ");
    strvec_clear(&lines);
    free(out);
}

Test(log, utf8_is_kept)
{
    char *out;

    log_setup("cp", -1);
    capture_start();
    log_info("image \xc3\xa9t\xc3\xa9 \xe2\x9c\x93");
    out = capture_end();
    cr_assert_str_eq(out, "INFO: cp: image \xc3\xa9t\xc3\xa9 \xe2\x9c\x93\n");
    free(out);
}

/* Whatever the length, a log line stays one terminated line. */
Test(log, long_messages_stay_one_terminated_line)
{
    struct sbuf big = SBUF_INIT;
    struct strvec lines = STRVEC_INIT;
    struct oned_line ol;
    char *out;

    for (int i = 0; i < 10000; i++)
        sbuf_addch(&big, (char)('a' + i % 26));
    log_setup("clone", 12);
    capture_start();
    log_info("%s", big.buf);
    out = capture_end();
    lines_of(out, 1, &lines);
    cr_assert(starts_with(lines.v[0], "INFO: 12 clone: abcdefghij"));
    cr_assert_gt(strlen(lines.v[0]), 4000);
    oned_parse(lines.v[0], &ol);
    cr_assert_eq(ol.id, 12);
    strvec_clear(&lines);
    free(out);
    sbuf_release(&big);
}

Test(log, long_action_name_and_message_keep_the_newline)
{
    struct sbuf big = SBUF_INIT, name = SBUF_INIT;
    struct strvec lines = STRVEC_INIT;
    char *out;

    for (int i = 0; i < 300; i++)
        sbuf_addch(&name, 'n');
    for (int i = 0; i < 5000; i++)
        sbuf_addch(&big, 'm');
    log_setup(name.buf, 123456789);
    capture_start();
    log_info("%s", big.buf);
    log_info("second");
    out = capture_end();
    lines_of(out, 2, &lines);
    cr_assert(starts_with(lines.v[0], "INFO: 123456789 nnnn"));
    cr_assert(ends_with(lines.v[1], ": second"), "'%s'", lines.v[1]);
    strvec_clear(&lines);
    free(out);
    sbuf_release(&big);
    sbuf_release(&name);
}

Test(log, fail_records_the_first_reason_and_logs_later_ones)
{
    struct strvec lines = STRVEC_INIT;
    struct oned_line ol;
    char *out;

    log_setup("clone", 42);
    cr_assert(!failed());
    cr_assert_str_eq(fail_reason(), "");
    capture_start();
    cr_assert_eq(fail("cannot copy %s", "disk.0"), -1);
    cr_assert(failed());
    cr_assert_eq(fail("then %d more", 2), -1);
    cr_assert_eq(fail("and %s", "another"), -1);
    out = capture_end();
    cr_assert_str_eq(fail_reason(), "cannot copy disk.0");
    lines_of(out, 2, &lines);
    cr_assert_str_eq(lines.v[0], "ERROR: 42 clone: then 2 more");
    cr_assert_str_eq(lines.v[1], "ERROR: 42 clone: and another");
    for (size_t i = 0; i < lines.nr; i++) {
        oned_parse(lines.v[i], &ol);
        cr_assert(ol.is_log && ol.id == 42, "'%s'", lines.v[i]);
    }
    strvec_clear(&lines);
    free(out);
}

Test(log, first_fail_prints_nothing)
{
    char *out;

    log_setup("cp", -1);
    capture_start();
    fail("quiet");
    out = capture_end();
    cr_assert_str_eq(out, "", "library code never prints the reason itself");
    free(out);
}

Test(log, fail_reason_is_one_line)
{
    fail("remote said:\nline two\r\nline\tthree");
    cr_assert_str_eq(fail_reason(), "remote said: line two  line three");
}

Test(log, fail_reset_forgets)
{
    fail("one");
    fail_reset();
    cr_assert(!failed());
    cr_assert_str_eq(fail_reason(), "");
    fail("two");
    cr_assert_str_eq(fail_reason(), "two");
}

Test(log, fail_errno_appends_strerror_and_keeps_errno)
{
    errno = ENOENT;
    cr_assert_eq(fail_errno("cannot open '%s'", "/x/y"), -1);
    cr_assert_eq(errno, ENOENT);
    cr_assert_str_eq(fail_reason(), "cannot open '/x/y': No such file or directory");

    fail_reset();
    errno = 0;
    cr_assert_eq(fail_errno("weird"), -1);
    cr_assert_str_eq(fail_reason(), "weird: Input/output error", "errno 0 reads as EIO");
    cr_assert_eq(errno, 0);
}

Test(log, fail_errno_after_a_reason_is_an_error_line)
{
    char *out;

    log_setup("rm", -1);
    fail("first");
    capture_start();
    errno = EACCES;
    fail_errno("second");
    out = capture_end();
    cr_assert_str_eq(out, "ERROR: rm: second: Permission denied\n");
    cr_assert_str_eq(fail_reason(), "first");
    free(out);
}

Test(log, fail_context_prefixes)
{
    fail("No space left on device");
    cr_assert_eq(fail_context("cannot write '%s'", "/d/disk.0"), -1);
    cr_assert_eq(fail_context("clone of image %d", 7), -1);
    cr_assert_str_eq(fail_reason(),
                     "clone of image 7: cannot write '/d/disk.0': No space left on device");
}

Test(log, fail_context_without_reason_becomes_the_reason)
{
    cr_assert_eq(fail_context("cannot clone"), -1);
    cr_assert(failed());
    cr_assert_str_eq(fail_reason(), "cannot clone");
}

Test(log, fail_context_is_one_line_and_bounded)
{
    struct sbuf big = SBUF_INIT;

    for (int i = 0; i < 3000; i++)
        sbuf_addch(&big, 'r');
    fail("%s", big.buf);
    cr_assert_lt(strlen(fail_reason()), 2048);
    fail_context("ctx\nwith newline");
    cr_assert(starts_with(fail_reason(), "ctx with newline: rrr"), "%.40s", fail_reason());
    cr_assert_lt(strlen(fail_reason()), 2048);
    cr_assert_null(strchr(fail_reason(), '\n'));
    sbuf_release(&big);
}

Test(log, report_failure_prints_one_plain_line)
{
    struct oned_line ol;
    char *out;

    log_setup("clone", 42);
    fail("cannot reach node1");
    capture_start();
    cr_assert_eq(report_failure(), 1);
    out = capture_end();
    cr_assert_str_eq(out, "cannot reach node1\n");
    oned_parse(out, &ol);
    cr_assert(!ol.is_log, "oned would take the reason for a log line");
    cr_assert_str_eq(ol.msg, "cannot reach node1");
    free(out);
}

Test(log, report_failure_without_reason_names_the_action)
{
    char *out;

    log_setup("mkfs", -1);
    capture_start();
    cr_assert_eq(report_failure(), 1);
    out = capture_end();
    cr_assert_str_eq(out, "mkfs failed\n");
    free(out);
}

/* A reason whose text happens to look like a log line (e.g. a remote
 * program's stderr) would vanish into oned.log and leave the user with an
 * empty error. The plain line must stay plain. */
Test(log, report_failure_line_never_parses_as_a_log_line)
{
    static const char *const reasons[] = {
        "ERROR: remote: disk full",
        "INFO: 42 something",
        "  WARN:  leading blanks are stripped by oned",
        "DEBUG:\tx",
        "\tERROR: tab",
    };

    log_setup("clone", 42);
    for (size_t i = 0; i < ARRAY_SIZE(reasons); i++) {
        struct strvec lines = STRVEC_INIT;
        struct oned_line ol;
        char *out, *text = xstrdup(reasons[i] + strspn(reasons[i], " \t"));

        for (char *p = text; *p; p++)
            if (*p == '\t')
                *p = ' ';
        fail_reset();
        fail("%s", reasons[i]);
        capture_start();
        report_failure();
        out = capture_end();
        lines_of(out, 1, &lines);
        oned_parse(lines.v[0], &ol);
        cr_assert(!ol.is_log, "reason '%s' printed as '%s' is a log line for oned", reasons[i],
                  lines.v[0]);
        cr_assert(strstr(ol.msg, text), "the reason text is kept: '%s'", lines.v[0]);
        free(text);
        strvec_clear(&lines);
        free(out);
    }
}

/* An empty (or blank) reason would give the user an empty error text. */
Test(log, report_failure_of_a_blank_reason_is_not_empty)
{
    static const char *const reasons[] = { "", "   ", "\n" };

    log_setup("cpds", 3);
    for (size_t i = 0; i < ARRAY_SIZE(reasons); i++) {
        struct oned_line ol;
        char *out;

        fail_reset();
        fail("%s", reasons[i]);
        capture_start();
        report_failure();
        out = capture_end();
        oned_parse(out, &ol);
        cr_assert(!ol.is_log);
        cr_assert_neq(ol.msg[0], '\0', "reason '%s' gives an empty error", reasons[i]);
        cr_assert(strstr(ol.msg, "cpds"), "'%s'", ol.msg);
        free(out);
    }
}

/* The whole protocol of a failing action: log lines with the VM id, and
 * exactly one plain line, the first reason. */
Test(log, a_failing_action_as_oned_sees_it)
{
    struct strvec lines = STRVEC_INIT;
    char *out;
    size_t plain = 0;

    log_setup("clone", 42);
    capture_start();
    log_info("start");
    fail("first reason");
    fail("second reason");
    fail_context("clone");
    log_warn("cleanup");
    report_failure();
    out = capture_end();
    lines_of(out, 4, &lines);
    for (size_t i = 0; i < lines.nr; i++) {
        struct oned_line ol;

        oned_parse(lines.v[i], &ol);
        if (!ol.is_log) {
            plain++;
            cr_assert_str_eq(ol.msg, "clone: first reason");
        } else {
            cr_assert_eq(ol.id, 42, "'%s'", lines.v[i]);
        }
    }
    cr_assert_eq(plain, 1);
    strvec_clear(&lines);
    free(out);
}

/* A child forked from Criterion's (threaded) worker exits without the
 * sanitizers' exit-time leak check, which would report the parent's memory
 * and print on the child's stderr. Registered last, runs first. */
static void quick_exit_child(int status, void *arg)
{
    (void)arg;
    fflush(NULL);
    _exit(status);
}

/* die() = fail + report + exit(1), in a child. */
static int run_die(const char *reason_before, char **err)
{
    int fds[2];
    pid_t pid;
    int st;
    struct sbuf sb = SBUF_INIT;

    cr_assert_eq(pipe(fds), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        on_exit(quick_exit_child, NULL);
        log_setup("snap", -1);
        if (reason_before)
            fail("%s", reason_before);
        die("out of %s", "memory");
    }
    close(fds[1]);
    cr_assert_eq(sbuf_read_fd(&sb, fds[0], 0), 0);
    close(fds[0]);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st));
    *err = sbuf_detach(&sb);
    return WEXITSTATUS(st);
}

Test(log, die_reports_and_exits_1)
{
    char *err;

    cr_assert_eq(run_die(NULL, &err), 1);
    cr_assert_str_eq(err, "out of memory\n");
    free(err);

    cr_assert_eq(run_die("earlier reason", &err), 1);
    cr_assert_str_eq(err, "ERROR: snap: out of memory\nearlier reason\n");
    free(err);
}
