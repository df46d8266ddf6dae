/* cmd_backup: aegisctl backup and restore (local commands on the data directory;
 * docs/operations.md "Backup and restore"). */
#ifndef AEGIS_CMD_BACKUP_H
#define AEGIS_CMD_BACKUP_H

#include "ctl.h"

extern const struct ctl_cmd cmd_backup_cmds[];

#endif
