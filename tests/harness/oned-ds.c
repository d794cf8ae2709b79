/*
 * oned-ds - plays the part of oned's datastore driver (one_datastore.rb).
 *
 *   oned-ds REMOTES_DIR ACTION ID [DS_MAD] < base64-message
 *
 * Runs REMOTES_DIR/datastore/<DS_MAD, default qcow2c>/<action lower-cased> ID
 * with the message on stdin, in the environment and working directory the
 * real driver uses (protocol §1.1, §5.1; the env of oned-captures/ds/cp/1),
 * and prints on stdout the lines the driver would send to oned
 * (DriverExecHelper#get_info_from_execution, §1.5):
 *   LOG <I|E|W|D> <id|-1> <message>     one per prefixed stderr line
 *   <ACTION> SUCCESS <ID> <stdout>      or
 *   <ACTION> FAILURE <ID> <non-prefixed stderr lines glued together>
 * An empty result becomes "-". For MONITOR the stdout is base64-encoded, as
 * the driver does. Exit status: 0 SUCCESS, 1 FAILURE, 2 usage.
 */
#include "util.h"

#include <ctype.h>
#include <regex.h>

#include "b64.h"
#include "log.h"
#include "run.h"
#include "sbuf.h"

static void upper(char *s)
{
    for (; *s; s++)
        *s = (char)toupper((unsigned char)*s);
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Ruby's String#strip. */
static char *strip(char *s)
{
    size_t n;

    while (*s && isspace((unsigned char)*s))
        s++;
    n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Splits stderr into LOG messages and the failure text. */
static void parse_stderr(char *err, struct sbuf *logs, struct sbuf *info)
{
    regex_t re;
    char *save = NULL;

    if (regcomp(&re, "^(ERROR|INFO|WARN|DEBUG):[[:space:]]+([0-9]+)?[[:space:]]*(.*)$",
                REG_EXTENDED))
        die("regcomp failed");
    for (char *line = strtok_r(err, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        regmatch_t m[4];
        char *l = strip(line);

        if (regexec(&re, l, 4, m, 0)) {
            sbuf_adds(info, l);
            continue;
        }
        sbuf_addf(logs, "LOG %c ", l[0] == 'W' ? 'W' : l[0]);
        if (m[2].rm_so >= 0)
            sbuf_addf(logs, "%.*s ", (int)(m[2].rm_eo - m[2].rm_so), l + m[2].rm_so);
        else
            sbuf_adds(logs, "-1 ");
        sbuf_addf(logs, "%s\n", strip(l + m[3].rm_so));
    }
    regfree(&re);
}

int main(int argc, char **argv)
{
    struct cmd c = CMD_INIT;
    struct sbuf in = SBUF_INIT, logs = SBUF_INIT, info = SBUF_INIT, enc = SBUF_INIT;
    char *action, *script;
    const char *result;
    int rc;

    log_setup("oned-ds", -1);
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: oned-ds REMOTES_DIR ACTION ID [DS_MAD] < base64-message\n");
        return 2;
    }
    action = xstrdup(argv[2]);
    script = xstrdup(argv[2]);
    upper(action);
    lower(script);
    if (sbuf_read_fd(&in, 0, 0) < 0)
        die("cannot read stdin");
    strvec_pushf(&c.args, "%s/datastore/%s/%s", argv[1], argc == 5 ? argv[4] : "qcow2c",
                 script);
    strvec_push(&c.args, argv[3]);
    /* What oned's driver environment adds (oned-captures/ds/cp/1/env). */
    strvec_pushl(&c.env, "PRIORITY=19", "ONE_MAD_DEBUG=", "SHELL=/bin/bash", NULL);
    c.in = in.buf;
    c.in_len = in.len;
    c.timeout_s = 3600;
    if (cmd_run_status(&c) < 0) {
        fprintf(stderr, "oned-ds: %s\n", fail_reason());
        return 2;
    }
    parse_stderr(c.err.buf, &logs, &info);
    fputs(logs.buf, stdout);
    if (c.status == 0) {
        result = "SUCCESS";
        if (streq(action, "MONITOR")) {
            b64_encode(c.out.buf, c.out.len, &enc);
            sbuf_reset(&info);
            sbuf_add(&info, enc.buf, enc.len);
        } else {
            sbuf_reset(&info);
            sbuf_add(&info, c.out.buf, c.out.len);
        }
    } else {
        result = "FAILURE";
        for (size_t i = 0; i < info.len; i++)
            if (info.buf[i] == '\n')
                info.buf[i] = ' ';
        {
            char *s = strip(info.buf);

            memmove(info.buf, s, strlen(s) + 1);
            info.len = strlen(info.buf);
        }
    }
    /* Ruby's puts adds a newline only when the text has none at its end. */
    printf("%s %s %s %s", action, result, argv[3], info.len ? info.buf : "-");
    if (!info.len || info.buf[info.len - 1] != '\n')
        putchar('\n');
    rc = c.status == 0 ? 0 : 1;
    cmd_release(&c);
    sbuf_release(&in);
    sbuf_release(&logs);
    sbuf_release(&info);
    sbuf_release(&enc);
    free(action);
    free(script);
    return rc;
}
