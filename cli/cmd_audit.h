/* cmd_audit: the tenant's audit log (audit list). */
#ifndef AEGIS_CMD_AUDIT_H
#define AEGIS_CMD_AUDIT_H

#include "ctl.h"

extern const struct ctl_cmd cmd_audit_cmds[];

#endif
