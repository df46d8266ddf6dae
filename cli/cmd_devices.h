/* cmd_devices: devices (import, list, show, claim, move, block, unblock). */
#ifndef AEGIS_CMD_DEVICES_H
#define AEGIS_CMD_DEVICES_H

#include "ctl.h"

extern const struct ctl_cmd cmd_devices_cmds[];

#endif
