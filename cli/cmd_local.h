/* cmd_local: the commands that work on the data directory: the PKI (pki init, pki rotate), tenants
 * (tenant create, list, token) and database migrations (migrate). */
#ifndef AEGIS_CMD_LOCAL_H
#define AEGIS_CMD_LOCAL_H

#include "ctl.h"

extern const struct ctl_cmd cmd_local_cmds[];

#endif
