/* cmd_attest: the attestation policy and records: reference values (platform values on the data
 * directory, the tenant's over the API), security minimums, attestation attempts. */
#ifndef AEGIS_CMD_ATTEST_H
#define AEGIS_CMD_ATTEST_H

#include "ctl.h"

extern const struct ctl_cmd cmd_attest_cmds[];

#endif
