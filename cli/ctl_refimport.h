/* ctl_refimport: `aegisctl refvals import FILE`, the reference values of a fleet in one command:
 * the platform's (bootloader, os) on the data directory, the tenant's (app) through the API. Why
 * two places: platform values are the service operator's and hold for every tenant, so no tenant
 * token may write them (docs/protocol.md, checks 7 and 8). The import is idempotent: a value the
 * service holds already with the same svn and digest is reported as present, one with another
 * digest or svn is an error (it never replaces a value). */
#ifndef AEGIS_CTL_REFIMPORT_H
#define AEGIS_CTL_REFIMPORT_H

#include "ctl.h"

/* The command handler (struct ctl_cmd.run). */
int ctl_refvals_import(struct ctl *c, int argc, char **argv);

#endif
