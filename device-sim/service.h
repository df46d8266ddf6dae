/* service: what the service holds for the simulated devices, read from the manufacturer REST API
 * (docs/api.md, a tenant token of any role), so that a run's summary can set it next to what the
 * devices made and had acknowledged. */
#ifndef AEGIS_SIM_SERVICE_H
#define AEGIS_SIM_SERVICE_H

#include <stddef.h>
#include <stdint.h>

struct service_count {
    uint64_t reports;       /* reports the service stored (each device's summary "reports") */
    uint64_t crash_reports; /* crash reports it holds (every page of the device's crash reports) */
};

/* Sums over the devices ids[0 .. n) of the tenant whose API token is token, at server (https://)
 * trusting cacert (a PEM file). 0, or -1 with a message in err (an HTTP error, a device the tenant
 * cannot see, a malformed answer). */
int service_count(const char *server, const char *cacert, const char *token, char *const *ids,
                  size_t n, struct service_count *out, char *err, size_t errlen);

/* The API token from the file path (its first line), else from the environment variable
 * AEGIS_TOKEN; NULL when neither is set or the file cannot be read (then *err_path is path).
 * malloc'd: wipe and free with service_token_free. */
char *service_token(const char *path, const char **err_path);
void service_token_free(char *token);

#endif
