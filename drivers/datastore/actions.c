/* actions.c - the DS action table. */
#include "ds.h"

const struct action ds_actions[] = {
    { "placeholder", NULL, 0, 0, 0, 0, "", "" },
};
const size_t ds_action_count = 0;
