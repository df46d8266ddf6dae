/* config_check: what `aegisd --check-config` adds to parsing the configuration: that the files and
 * directories it names exist (or can be created) and are usable by the user running the check. */
#ifndef AEGIS_CONFIG_CHECK_H
#define AEGIS_CONFIG_CHECK_H

#include "config.h"

#include <stdio.h>

/* Checks the paths of a finalized c: data_dir (a writable directory), the database (its directory
 * writable; the file, when it exists, readable and writable), pki_dir (a readable directory),
 * tls_cert (a readable file), tls_key (a readable file of no access for group and others, as aegisd
 * requires), issuance_log and log_file (their directory writable; the file, when it exists,
 * writable), data_dir/images (a writable directory, or data_dir writable to create it). Prints each
 * problem as one line "aegisd: <key> <path>: <problem>" to out. Returns the number of problems. */
int config_check_paths(const struct config *c, FILE *out);

#endif
