/*
 * monitor DATASTORE_ID  (stdin: DS_DRIVER_ACTION_DATA with DATASTORE only)
 *
 * Space of the image datastore, as `df -B1M` would report it for BASE_PATH
 * (values rounded up to MB), three lines (protocol §5.3, §5.6):
 *   USED_MB=<n>  FREE_MB=<n>  TOTAL_MB=<n>
 * oned runs it after every image operation and periodically, possibly while
 * other actions run: it only reads, and costs one statvfs(2).
 */
#include "ds_actions.h"

#include <sys/statvfs.h>

#include "dsutil.h"
#include "fsutil.h"
#include "log.h"

static unsigned long long mb_up(unsigned long long blocks, unsigned long long frsize)
{
    return (blocks * frsize + (1ull << 20) - 1) >> 20;
}

int ds_monitor(struct action_ctx *ctx)
{
    struct ds ds;
    struct statvfs sv;
    int rc = -1;

    if (ds_load(ctx->ds, &ds) < 0)
        return -1;
    if (mkdir_p(ds.base_norm, 0755) < 0)
        goto out;
    if (statvfs(ds.base_norm, &sv) < 0) {
        fail_errno("cannot read the space of '%s'", ds.base_path);
        goto out;
    }
    printf("USED_MB=%llu\nFREE_MB=%llu\nTOTAL_MB=%llu\n",
           mb_up(sv.f_blocks - sv.f_bfree, sv.f_frsize), mb_up(sv.f_bavail, sv.f_frsize),
           mb_up(sv.f_blocks, sv.f_frsize));
    rc = 0;
out:
    ds_release(&ds);
    return rc;
}
