/* main.c - qcow2c-tm: the transfer-manager actions of the qcow2c driver. */
#include "util.h"

#include "multicall.h"
#include "tm.h"

int main(int argc, char **argv)
{
    return multicall_main("qcow2c-tm", tm_actions, tm_action_count, argc, argv);
}
