/* cmd_context: the stored context (ctl_context): login, logout, config view. */
#ifndef AEGIS_CMD_CONTEXT_H
#define AEGIS_CMD_CONTEXT_H

#include "ctl.h"

extern const struct ctl_cmd cmd_context_cmds[];

#endif
