/*
 * pending.c - placeholders for actions still being written: weak symbols
 * that the real action files replace. Each fails with one clear line.
 * TODO(issue 3): remove this file once every action has its own.
 */
#include "tm_actions.h"

#include "log.h"

#define PENDING(fn)                                                                     \
    __attribute__((weak)) int fn(struct action_ctx *ctx)                               \
    {                                                                                   \
        return fail("qcow2c: %s is not available in this build", ctx->name);            \
    }

PENDING(tm_clone)
PENDING(tm_ln)
PENDING(tm_mkswap)
PENDING(tm_mkimage)
PENDING(tm_context)
PENDING(tm_mv)
PENDING(tm_mvds)
PENDING(tm_cpds)
PENDING(tm_delete)
PENDING(tm_resize)
PENDING(tm_snap_create)
PENDING(tm_snap_create_live)
PENDING(tm_snap_delete)
PENDING(tm_snap_revert)
PENDING(tm_premigrate)
PENDING(tm_postmigrate)
PENDING(tm_failmigrate)
PENDING(tm_monitor)
