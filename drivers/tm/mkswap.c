/*
 * mkswap SIZE_MB HOST:VM_DIR/disk.N VM_ID DS_ID
 *
 * A volatile swap disk (DISK TYPE=swap; protocol §2.3 mkswap), run with the
 * system datastore's TM: DS_ID is the system datastore. On HOST, disk.N
 * becomes a raw file of SIZE_MB MB with a swap signature labelled "swap"
 * (`mkswap -L swap`), a plain file as stock. It is mkimage with FORMAT swap
 * (mkimage.c): built beside disk.N and renamed, rebuilt on a re-run; the
 * VM document is not read. Refused: as mkimage.
 */
#include "tm_actions.h"

#include "provision.h"

int tm_mkswap(struct action_ctx *ctx)
{
    return prov_volatile(ctx, ctx->argv[0], "swap", ctx->argv[1]);
}
