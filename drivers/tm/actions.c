/* actions.c - the TM action table. */
#include "tm.h"

const struct action tm_actions[] = {
    { "placeholder", NULL, 0, 0, 0, 0, "", "" },
};
const size_t tm_action_count = 0;
