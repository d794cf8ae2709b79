/* tm.h - the table of TM actions (filled in by the TM driver work). */
#ifndef QCOW2C_TM_H
#define QCOW2C_TM_H

#include "multicall.h"

extern const struct action tm_actions[];
extern const size_t tm_action_count;

#endif
