/* ds.h - the table of DS actions. */
#ifndef QCOW2C_DS_H
#define QCOW2C_DS_H

#include "multicall.h"

extern const struct action ds_actions[];
extern const size_t ds_action_count;

#endif
