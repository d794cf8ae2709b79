/*
 * multicall.h - one program, many actions.
 *
 * qcow2c-tm and qcow2c-ds each carry a table of actions. The program looks at
 * the name it was started under (oned runs remotes/tm/qcow2c/clone, a link to
 * qcow2c-tm) and also accepts `qcow2c-tm clone ARGS...`. The table declares
 * each action's argument count and usage, which are checked before the action
 * runs; `--list` prints the action names, and install.sh makes one link per
 * line of it, so the table is the only list of actions there is.
 */
#ifndef QCOW2C_MULTICALL_H
#define QCOW2C_MULTICALL_H

#include "util.h"

struct xml;

struct action_ctx {
    const struct action *act;
    const char *name;   /* as invoked, e.g. "clone.ssh" */
    int argc;           /* arguments after the action name */
    char **argv;
    int id;             /* the numeric id argument (VM id, image id...), -1 if none */
    struct xml *ds;     /* DS_DRIVER_ACTION_DATA from stdin, when ACT_STDIN_DS */
};

enum action_flags {
    ACT_STDIN_DS = 1 << 0, /* read and decode the base64 DS message on stdin */
    ACT_ID_IS_VM = 1 << 1, /* the id argument is a VM id: log lines go to its log */
};

struct action {
    const char *name;
    int (*run)(struct action_ctx *ctx);
    int min_args, max_args; /* max -1: no limit */
    int id_pos;             /* 1-based position of the numeric id; < 0 from the end; 0 none */
    unsigned flags;
    const char *usage;      /* the arguments, e.g. "SRC_HOST:PATH DST_HOST:PATH VM_ID DS_ID" */
    const char *summary;
};

/* The program's main(). Returns the exit status: 0 success, 1 failure (one
 * reason line on stderr), 2 usage error. */
int multicall_main(const char *prog, const struct action *table, size_t n, int argc, char **argv);

#endif
