/*
 * run.h - running other programs: argv arrays only, never a shell.
 *
 *     struct cmd c = CMD_INIT;
 *     strvec_pushl(&c.args, "qemu-img", "check", "-q", path, NULL);
 *     c.timeout_s = 600;
 *     if (cmd_run(&c) < 0)
 *         return -1;              // reason recorded, one line
 *     cmd_release(&c);
 *
 * The child gets a minimal environment (PATH, HOME, LC_ALL=C, plus `env`),
 * stdin from `in`/`in_fd` or /dev/null, and no descriptor of ours besides
 * 0-2. Its stdout and stderr are captured (bounded: stdout up to `out_max`,
 * the last `err_max` bytes of stderr), never inherited, because a stray line
 * on our stderr would corrupt the reason oned shows the user. Every child has
 * a time limit; when it expires its whole process group gets SIGTERM, then
 * SIGKILL. Exec failures and deaths by signal are reported in the reason.
 */
#ifndef QCOW2C_RUN_H
#define QCOW2C_RUN_H

#include "sbuf.h"
#include "strvec.h"

struct cmd {
    struct strvec args;
    struct strvec env;      /* extra "NAME=value" entries */
    const char *dir;        /* working directory, NULL = inherit */
    const char *in;         /* data for the child's stdin, or NULL */
    size_t in_len;
    int in_fd;              /* >= 0: the child's stdin (wins over `in`) */
    int out_fd;             /* >= 0: the child's stdout goes there, not captured */
    struct sbuf out;
    struct sbuf err;
    size_t out_max;         /* 0 = 4 MiB; beyond it the action fails */
    size_t err_max;         /* 0 = 16 KiB tail */
    unsigned timeout_s;     /* 0 = run_default_timeout */
    const char *what;       /* how to name the command in messages; NULL = argv */
    /* results */
    int status;             /* exit code, 128 + signal number, or -1 */
    bool timed_out;
};

#define CMD_INIT                                                                        \
    {                                                                                   \
        .args = STRVEC_INIT, .env = STRVEC_INIT, .in_fd = -1, .out_fd = -1,             \
        .out = SBUF_INIT, .err = SBUF_INIT, .status = -1,                               \
    }

/* Seconds a child may run when the caller sets no limit (config TIMEOUT). */
extern unsigned run_default_timeout;
/* Children started by this process, for the benchmarks' per-action counts. */
extern unsigned long run_children_started;

/* Runs the command; 0 when it exited 0. Otherwise records one reason naming
 * the command, how it ended and the tail of its stderr, and returns -1. */
int cmd_run(struct cmd *c);
/* Runs the command and leaves judging the exit status to the caller: -1 only
 * when it could not be started or was killed for exceeding its time. */
int cmd_run_status(struct cmd *c);
void cmd_release(struct cmd *c);

/* Fails with the standard message for a finished command (used by callers of
 * cmd_run_status that refuse a status). */
int cmd_fail(const struct cmd *c);

/* Renders argv for messages: words quoted only when needed, at most `max`
 * bytes (then "..."). */
void cmd_render(struct sbuf *out, const char *const *argv, size_t max);

/* The fd-level plumbing shared with the ssh session (ssh.c). */
struct child {
    pid_t pid;
    int in;     /* write end of the child's stdin, or -1 */
    int out;    /* read end of its stdout, or -1 */
    int err;    /* read end of its stderr */
};

/* Forks and execs argv with the minimal environment. `in_fd`/`out_fd` >= 0
 * are given to the child as is; otherwise pipes are made (stdin: a pipe when
 * `want_in`, else /dev/null). Returns 0, or -1 with the reason recorded. */
int child_spawn(struct child *ch, const char *const *argv, const char *const *env,
                const char *dir, int in_fd, bool want_in, int out_fd);
/* Waits for the child; SIGTERM then SIGKILL to its group when `deadline_ms`
 * (CLOCK_MONOTONIC, 0 = none) passes. Returns the status as in struct cmd. */
int child_wait(pid_t pid, long long deadline_ms, bool *timed_out);
void child_kill_group(pid_t pid);

long long monotonic_ms(void);

#endif
