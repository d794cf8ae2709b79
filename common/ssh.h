/*
 * ssh.h - reaching hosts.
 *
 * Two shapes:
 *   - ssh_cmd(): one remote command for data streams (e.g. a disk copied
 *     between hosts in ssh mode), run with the run.h API so that its stdin and
 *     stdout can be files or pipes;
 *   - struct rsh: one ssh connection per action, carrying any number of
 *     commands. `ssh HOST exec sh` is started once; each command is written to
 *     that shell as a quoted argv line followed by markers that carry its exit
 *     status on stdout and close its stderr. One authentication, one TCP
 *     connection, and the action's logic stays in C between round trips.
 *
 * Every remote argument passes through sq_quote() (quote.h). ssh always runs
 * with BatchMode (never prompts), ConnectTimeout and keep-alives from
 * qcow2c.conf, and each command has a time limit after which the connection is
 * torn down.
 */
#ifndef QCOW2C_SSH_H
#define QCOW2C_SSH_H

#include "run.h"

/* Host names that may be handed to ssh: letters, digits, '.', '-', '_', not
 * starting with '-' (which ssh would read as an option). */
bool ssh_host_valid(const char *host);

/* Fills c->args with ssh + options + HOST + the quoted remote argv. */
int ssh_cmd(struct cmd *c, const char *host, const char *const *remote_argv);

struct rsh;

/* Connects; NULL with the reason recorded when the host cannot be reached. */
struct rsh *rsh_open(const char *host);
/* Runs c->args on the host (stdin is /dev/null there; c->in/in_fd/out_fd are
 * not supported). Same result conventions as cmd_run()/cmd_run_status(). */
int rsh_run(struct rsh *r, struct cmd *c);
int rsh_run_status(struct rsh *r, struct cmd *c);
void rsh_close(struct rsh *r);
const char *rsh_host(const struct rsh *r);

#endif
