/* cmd_failures: failure reporting (docs/telemetry.md): crash buckets, a device's reports, crash
 * rates, the export, emerging-problem flags. */
#ifndef AEGIS_CMD_FAILURES_H
#define AEGIS_CMD_FAILURES_H

#include "ctl.h"

extern const struct ctl_cmd cmd_failures_cmds[];

#endif
