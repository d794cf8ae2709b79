/* main.c - qcow2c-ds: the datastore actions of the qcow2c driver. */
#include "util.h"

#include "ds.h"
#include "multicall.h"

int main(int argc, char **argv)
{
    return multicall_main("qcow2c-ds", ds_actions, ds_action_count, argc, argv);
}
