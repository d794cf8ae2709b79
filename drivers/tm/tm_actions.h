/* tm_actions.h - the TM actions; each file's header comment is its contract. */
#ifndef QCOW2C_TM_ACTIONS_H
#define QCOW2C_TM_ACTIONS_H

#include "multicall.h"

int tm_clone(struct action_ctx *ctx);         /* clone, clone.ssh */
int tm_ln(struct action_ctx *ctx);            /* ln, ln.ssh */
int tm_mkswap(struct action_ctx *ctx);
int tm_mkimage(struct action_ctx *ctx);
int tm_context(struct action_ctx *ctx);
int tm_mv(struct action_ctx *ctx);            /* mv, mv.ssh */
int tm_mvds(struct action_ctx *ctx);          /* mvds, mvds.ssh */
int tm_cpds(struct action_ctx *ctx);          /* cpds, cpds.ssh */
int tm_delete(struct action_ctx *ctx);
int tm_resize(struct action_ctx *ctx);
int tm_snap_create(struct action_ctx *ctx);   /* snap_create, snap_create.ssh */
int tm_snap_create_live(struct action_ctx *ctx);
int tm_snap_delete(struct action_ctx *ctx);
int tm_snap_revert(struct action_ctx *ctx);
int tm_premigrate(struct action_ctx *ctx);
int tm_postmigrate(struct action_ctx *ctx);
int tm_failmigrate(struct action_ctx *ctx);
int tm_monitor(struct action_ctx *ctx);
int tm_no_backup(struct action_ctx *ctx);     /* prebackup*, postbackup*, restore */

#endif
