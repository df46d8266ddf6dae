/* aegisctl deployments: deployments and staged rollouts (docs/cli.md "deployments"). */
#ifndef AEGIS_CMD_DEPLOYMENTS_H
#define AEGIS_CMD_DEPLOYMENTS_H

#include "ctl.h"

extern const struct ctl_cmd cmd_deployments_cmds[];

#endif
