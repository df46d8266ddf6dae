/* cmd_tenant: the caller's tenant and its API tokens (tenant show, tokens ...). */
#ifndef AEGIS_CMD_TENANT_H
#define AEGIS_CMD_TENANT_H

#include "ctl.h"

extern const struct ctl_cmd cmd_tenant_cmds[];

#endif
