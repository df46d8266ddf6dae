/* aegisctl ota: the offline TUF keys, roots and targets of the tenant's repositories (docs/cli.md
 * "ota"). */
#ifndef AEGIS_CMD_OTA_H
#define AEGIS_CMD_OTA_H

#include "ctl.h"

extern const struct ctl_cmd cmd_ota_cmds[];

#endif
