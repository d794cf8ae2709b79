/* ds_actions.h - the DS actions; each file's header comment is its contract. */
#ifndef QCOW2C_DS_ACTIONS_H
#define QCOW2C_DS_ACTIONS_H

#include "multicall.h"

int ds_cp(struct action_ctx *ctx);
int ds_mkfs(struct action_ctx *ctx);
int ds_rm(struct action_ctx *ctx);
int ds_stat(struct action_ctx *ctx);
int ds_clone(struct action_ctx *ctx);
int ds_monitor(struct action_ctx *ctx);
int ds_snap_delete(struct action_ctx *ctx);
int ds_snap_revert(struct action_ctx *ctx);
int ds_snap_flatten(struct action_ctx *ctx);
int ds_export(struct action_ctx *ctx);

#endif
