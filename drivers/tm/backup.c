/*
 * prebackup, prebackup_live, postbackup, postbackup_live, restore
 *
 * OpenNebula's backup actions (protocol §2.3). qcow2c does not do backups
 * yet: each fails with one line saying so, instead of oned reporting a
 * missing script, and without touching anything.
 */
#include "tm_actions.h"

#include "log.h"

int tm_no_backup(struct action_ctx *ctx)
{
    return fail("qcow2c does not do backups yet (%s): use a datastore with another TM "
                "driver for VMs that need backups",
                ctx->name);
}
