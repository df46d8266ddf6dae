/* aegisd configuration: one table of keys (name, type, bounds, default), read from a "key = value"
 * file and overridden by flags. main.c loads it once into the daemon's state before anything
 * starts; from then on every thread reads it through app->cfg and nothing writes it (SIGHUP
 * reopens the log file only). There is no global copy. */
#ifndef AEGIS_CONFIG_H
#define AEGIS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_PATH_MAX 1024

struct config {
    char listen_host[256];
    int listen_port; /* 0 = any free port (tests) */
    char data_dir[CONFIG_PATH_MAX];
    char database[CONFIG_PATH_MAX]; /* default: <data_dir>/aegis.db */
    char pki_dir[CONFIG_PATH_MAX];  /* default: <data_dir>/pki */
    char tls_cert[CONFIG_PATH_MAX]; /* default: <pki_dir>/server.crt */
    char tls_key[CONFIG_PATH_MAX];  /* default: <pki_dir>/server.key */
    char log_level[16];
    char log_file[CONFIG_PATH_MAX]; /* empty: stderr */
    char log_format[8];             /* "text" or "json" (log.h) */
    int64_t threads;                /* 0: one per CPU */
    int event_loop_epoll;           /* libmicrohttpd's event loop: 0 poll, 1 epoll (default) */
    int64_t max_connections;
    int64_t connection_timeout_s;
    int64_t max_body_bytes;
    int64_t import_max_bytes;
    int64_t image_max_bytes; /* one update image (POST /v1/images) */
    int64_t drain_timeout_s;
    int64_t per_ip_connections;
    int64_t header_timeout_s; /* TLS handshake + request head must be done within (http_conns.h) */
    int64_t min_body_rate;    /* bytes per s a request body must average after header_timeout */
    int64_t cert_lifetime_s;
    int64_t nonce_ttl_s;
    int64_t session_ttl_s;   /* a dashboard session's lifetime (POST /v1/session) */
    int64_t challenge_rate;  /* attestation challenges (and, apart, attempts) per s per address */
    int64_t challenge_burst; /* and the burst allowed above that rate */
    /* failure reporting (docs/telemetry.md) */
    int64_t telemetry_rate;             /* uploads per s per device (token bucket) */
    int64_t telemetry_burst;            /* and the burst allowed above that rate */
    int64_t ingest_queue_max;           /* reports in flight to the writer; above: 503 overloaded */
    int64_t report_retention_days;      /* reports older than this are deleted (aggregates stay) */
    int64_t attestation_retention_days; /* attestation records older than this are deleted */
    int64_t flag_new_bucket_devices; /* flag a new bucket seen on more devices in its first hour */
    int64_t flag_rate_factor_pct;    /* flag a version whose crash rate exceeds its predecessor's
                                      * by this factor, in percent (200 = 2.0x) */
    int64_t flag_min_device_hours;   /* device-hours both versions need before they are compared */
    /* update distribution (docs/update.md) */
    int64_t update_status_rate;            /* status reports per s per device (token bucket) */
    int64_t update_status_burst;           /* and the burst allowed above that rate */
    int64_t update_attempt_retention_days; /* attempts of deployments over for longer are deleted */
    int64_t director_cache_max;            /* devices whose director answer is kept in memory */
    /* the signer process (docs/architecture.md "The signer process") */
    char issuance_log[CONFIG_PATH_MAX]; /* default: <pki_dir>/issuance.log */
    int64_t signer_issue_rate;          /* device certificates per s per tenant (token bucket) */
    int64_t signer_issue_burst;         /* and the burst allowed above that rate */
    int64_t signer_timeout_ms;          /* a request the signer has not answered by then: 503 */
    /* how aegisd keeps itself from the key files: "auto" (Landlock when the kernel has it, else a
     * warning), "required" (refuse to start without it) or "off" */
    char key_isolation[16];
    /* the operations listener (docs/metrics.md): plain HTTP serving /metrics, /healthz and /readyz
     * only; metrics_port -1 = none (metrics_listen empty, the default) */
    char metrics_host[256];
    int metrics_port;
};

/* Fills c with the defaults. */
void config_defaults(struct config *c);

/* Reads path into c (on top of what c holds). Unknown keys, bad values, a key set twice and
 * missing files are refused with "file:line: reason" in err. Returns 0 / -1.
 * The file's lines are "key = value", blank, or comments ('#' first). A value is either quoted:
 * from a '"' right after the '=' (and blanks) to the next '"' (no escapes; it may hold '#'),
 * followed only by blanks or a comment; or bare: all up to a '#' (which starts a comment) or the
 * line's end, without surrounding blanks. So a value with '#' must be quoted, one that starts with
 * '"' cannot be (a lone '"' is bare), and "" is an empty value. */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen);

/* Sets one key from a string, as the file would ("listen", "data_dir", ...). where names the source
 * for error messages ("--listen"). Returns 0 / -1. */
int config_set(struct config *c, const char *key, const char *value, const char *where, char *err,
               size_t errlen);

/* Derives the default paths (database, pki_dir, tls_*) from data_dir where they were not set.
 * Returns 0 / -1 (a path too long). */
int config_finalize(struct config *c, char *err, size_t errlen);

/* Parses "host:port" or "[v6]:port" into host and port. Returns 0 / -1. */
int config_parse_listen(const char *s, char *host, size_t hostlen, int *port);

/* The keys SIGHUP applies without a restart (docs/metrics.md "Reloading"): log_level. Returns 1
 * for such a key. */
int config_key_reloadable(const char *key);
/* The name of the first key after *iter (start at 0) whose value differs between a and b, NULL
 * when there is none left; for SIGHUP's "needs restart" warnings. */
const char *config_next_change(const struct config *a, const struct config *b, size_t *iter);

#endif
