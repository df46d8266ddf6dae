/* aegis-sim: many firmware-ref devices in one process (see device-sim/README.md).
 *
 * A fleet directory D holds:
 *   D/dev-NNNNN/        one device each (hal_host.h layout: keystore/, storage/)
 *   D/devices.json      [{"index", "device_id", "dir"}] in index order
 *   D/import.json       the identity public keys (PEM) in index order, for
 *                       `aegisctl devices import`
 *   D/refvals.json      the reference values of the images:
 *                       [{"stage", "component", "version", "svn", "digest"}]
 *
 * Exit status of every command: 0 when it completed (outcomes are data, except for d2d, whose
 * outcome is its status), 1 on a setup or runtime error, 2 on a usage error. */
#ifndef AEGIS_SIM_H
#define AEGIS_SIM_H

#include <stddef.h>
#include <stdint.h>

#define SIM_EXIT_OK 0
#define SIM_EXIT_ERROR 1
#define SIM_EXIT_USAGE 2
#define SIM_DEVICES_MAX 100000
#define SIM_PATH_MAX 4096

/* Subcommands: argc/argv start at the subcommand's first option. */
int sim_provision(int argc, char **argv);
int sim_run(int argc, char **argv);
int sim_whoami(int argc, char **argv);
int sim_d2d(int argc, char **argv);
int sim_update(int argc, char **argv);

/* --- common.c --- */

/* Parses a whole decimal integer in [min, max]. 0 or -1. */
int sim_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Parses a probability: a decimal number in [0, 1]. 0 or -1. */
int sim_parse_prob(const char *s, double *out);
/* "D/dev-NNNNN" of device index i into out[SIM_PATH_MAX]. 0 or -1. */
int sim_device_dir(const char *fleet, size_t i, char *out);
/* Number of devices of a fleet (from D/devices.json), or -1. ids (may be NULL) gets a malloc'd
 * array of malloc'd device IDs (free with sim_free_ids). */
long sim_fleet_size(const char *fleet, char ***ids);
void sim_free_ids(char **ids, size_t n);
/* Reads a whole text file (at most max bytes, NUL-terminated, malloc'd), or NULL. */
char *sim_read_text(const char *path, size_t max);
/* Writes a public file (0644) with util_write_file: atomic and durable. 0 or -1. */
int sim_write_file(const char *path, const char *data, size_t len);
/* Flushes the file system holding path to disk (syncfs). 0 or -1. */
int sim_sync_fs(const char *path);
/* Milliseconds from a monotonic clock. */
double sim_now_ms(void);
/* Nearest-rank percentile p (0-100) of v[0..n) (sorts v). 0 when n == 0. */
double sim_percentile(double *v, size_t n, double p);

#endif
