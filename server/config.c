#include "config.h"

#include "log.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* KEY_STR_OPT: a string that may be empty (log_file: stderr). */
enum key_type {
    KEY_STR,
    KEY_STR_OPT,
    KEY_INT,
    KEY_LISTEN,
    KEY_LEVEL,
    KEY_FORMAT,
    KEY_EVENT_LOOP,
    KEY_OPT_LISTEN
};

struct key_def {
    const char *name;
    enum key_type type;
    size_t offset;
    size_t size; /* KEY_STR: buffer size */
    int64_t min, max;
};

#define STR(field)                                                                                 \
    KEY_STR, offsetof(struct config, field), sizeof(((struct config *)0)->field), 0, 0
#define STR_OPT(field)                                                                             \
    KEY_STR_OPT, offsetof(struct config, field), sizeof(((struct config *)0)->field), 0, 0
#define INT(field, lo, hi) KEY_INT, offsetof(struct config, field), 0, lo, hi

static const struct key_def keys[] = {
    {"listen", KEY_LISTEN, 0, 0, 0, 0},
    {"data_dir", STR(data_dir)},
    {"database", STR(database)},
    {"pki_dir", STR(pki_dir)},
    {"tls_cert", STR(tls_cert)},
    {"tls_key", STR(tls_key)},
    {"log_level", KEY_LEVEL, 0, 0, 0, 0},
    {"event_loop", KEY_EVENT_LOOP, 0, 0, 0, 0},
    {"log_file", STR_OPT(log_file)},
    {"log_format", KEY_FORMAT, 0, 0, 0, 0},
    {"threads", INT(threads, 0, 256)},
    {"max_connections", INT(max_connections, 1, 100000)},
    {"connection_timeout", INT(connection_timeout_s, 1, 3600)},
    {"max_body_bytes", INT(max_body_bytes, 1024, 64 * 1024 * 1024)},
    {"import_max_bytes", INT(import_max_bytes, 1024, 256 * 1024 * 1024)},
    {"image_max_bytes", INT(image_max_bytes, 1024 * 1024, 64LL * 1024 * 1024 * 1024)},
    {"drain_timeout", INT(drain_timeout_s, 0, 600)},
    {"per_ip_connections", INT(per_ip_connections, 0, 100000)},
    {"header_timeout", INT(header_timeout_s, 1, 3600)},
    {"min_body_rate", INT(min_body_rate, 0, 1000000000)},
    {"cert_lifetime", INT(cert_lifetime_s, 3600, 7 * 86400)},
    {"nonce_ttl", INT(nonce_ttl_s, 5, 3600)},
    {"session_ttl", INT(session_ttl_s, 300, 7 * 86400)},
    {"challenge_rate", INT(challenge_rate, 1, 1000000)},
    {"challenge_burst", INT(challenge_burst, 1, 1000000)},
    {"telemetry_rate", INT(telemetry_rate, 1, 1000000)},
    {"telemetry_burst", INT(telemetry_burst, 1, 1000000)},
    {"ingest_queue_max", INT(ingest_queue_max, 1, 1000000)},
    {"report_retention_days", INT(report_retention_days, 1, 3650)},
    {"attestation_retention_days", INT(attestation_retention_days, 1, 3650)},
    {"flag_new_bucket_devices", INT(flag_new_bucket_devices, 1, 1000000)},
    {"flag_rate_factor_pct", INT(flag_rate_factor_pct, 101, 100000)},
    {"flag_min_device_hours", INT(flag_min_device_hours, 1, 1000000000)},
    {"update_status_rate", INT(update_status_rate, 1, 1000000)},
    {"update_status_burst", INT(update_status_burst, 1, 1000000)},
    {"update_attempt_retention_days", INT(update_attempt_retention_days, 1, 3650)},
    {"director_cache_max", INT(director_cache_max, 1, 100000000)},
    {"issuance_log", STR(issuance_log)},
    {"signer_issue_rate", INT(signer_issue_rate, 1, 1000000)},
    {"signer_issue_burst", INT(signer_issue_burst, 1, 10000000)},
    {"signer_timeout_ms", INT(signer_timeout_ms, 100, 600000)},
    {"key_isolation", STR(key_isolation)},
    {"metrics_listen", KEY_OPT_LISTEN, 0, 0, 0, 0},
};

void
config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
    c->listen_port = 8443;
    snprintf(c->data_dir, sizeof(c->data_dir), "var");
    snprintf(c->log_level, sizeof(c->log_level), "info");
    snprintf(c->log_format, sizeof(c->log_format), "text");
    c->threads = 0;
    c->event_loop_epoll = 1;
    c->max_connections = 1024;
    c->connection_timeout_s = 30;
    c->max_body_bytes = 1024 * 1024;
    c->import_max_bytes = 8 * 1024 * 1024;
    c->image_max_bytes = 2LL * 1024 * 1024 * 1024;
    c->drain_timeout_s = 10;
    c->per_ip_connections = 64;
    c->header_timeout_s = 10;
    c->min_body_rate = 256;
    c->cert_lifetime_s = 86400;
    c->nonce_ttl_s = 60;
    c->session_ttl_s = 43200;
    c->challenge_rate = 50;
    c->challenge_burst = 100;
    c->telemetry_rate = 5;
    c->telemetry_burst = 20;
    c->ingest_queue_max = 20000;
    c->report_retention_days = 90;
    c->attestation_retention_days = 90;
    c->flag_new_bucket_devices = 10;
    c->flag_rate_factor_pct = 200;
    c->flag_min_device_hours = 24;
    c->update_status_rate = 2;
    c->update_status_burst = 20;
    c->update_attempt_retention_days = 90;
    c->director_cache_max = 200000;
    c->signer_issue_rate = 500;
    c->signer_issue_burst = 5000;
    c->signer_timeout_ms = 5000;
    snprintf(c->key_isolation, sizeof(c->key_isolation), "auto");
    c->metrics_port = -1;
}

int
config_parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hl = (size_t)(colon - s);
    }
    int64_t p;
    if (hl == 0 || hl >= hostlen || util_parse_i64(colon + 1, 0, 65535, &p) != 0)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

/* metrics_listen: "" (none), "PORT" (on loopback), or host:port. */
static int
set_metrics_listen(struct config *c, const char *value, const char *where, char *err, size_t errlen)
{
    int64_t p;
    if (value[0] == '\0') {
        c->metrics_host[0] = '\0';
        c->metrics_port = -1;
        return 0;
    }
    if (util_parse_i64(value, 0, 65535, &p) == 0) {
        snprintf(c->metrics_host, sizeof(c->metrics_host), "127.0.0.1");
        c->metrics_port = (int)p;
        return 0;
    }
    if (config_parse_listen(value, c->metrics_host, sizeof(c->metrics_host), &c->metrics_port) !=
        0) {
        snprintf(err, errlen,
                 "%s: metrics_listen: expected host:port, a port or nothing, got "
                 "'%.64s'",
                 where, value);
        return -1;
    }
    return 0;
}

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* The index of key in keys, or -1. */
static int
key_index(const char *key)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, key) == 0)
            return (int)i;
    return -1;
}

int
config_set(struct config *c, const char *key, const char *value, const char *where, char *err,
           size_t errlen)
{
    int ki = key_index(key);
    if (ki < 0) {
        snprintf(err, errlen, "%s: unknown key '%.64s'", where, key);
        return -1;
    }
    const struct key_def *k = &keys[ki];
    enum log_level lvl;
    enum log_format fmt;
    int64_t v;
    switch (k->type) {
    case KEY_LISTEN:
        if (config_parse_listen(value, c->listen_host, sizeof(c->listen_host), &c->listen_port) !=
            0) {
            snprintf(err, errlen, "%s: listen: expected host:port, got '%.64s'", where, value);
            return -1;
        }
        return 0;
    case KEY_OPT_LISTEN:
        return set_metrics_listen(c, value, where, err, errlen);
    case KEY_EVENT_LOOP:
        if (strcmp(value, "poll") != 0 && strcmp(value, "epoll") != 0) {
            snprintf(err, errlen, "%s: event_loop: expected poll or epoll", where);
            return -1;
        }
        c->event_loop_epoll = strcmp(value, "epoll") == 0;
        return 0;
    case KEY_LEVEL:
        if (log_parse_level(value, &lvl) != 0) {
            snprintf(err, errlen, "%s: log_level: expected debug, info, warn or error", where);
            return -1;
        }
        snprintf(c->log_level, sizeof(c->log_level), "%s", value);
        return 0;
    case KEY_FORMAT:
        if (log_parse_format(value, &fmt) != 0) {
            snprintf(err, errlen, "%s: log_format: expected text or json", where);
            return -1;
        }
        snprintf(c->log_format, sizeof(c->log_format), "%s", value);
        return 0;
    case KEY_INT:
        if (util_parse_i64(value, k->min, k->max, &v) != 0) {
            snprintf(err, errlen, "%s: %s: expected an integer from %lld to %lld, got '%.32s'",
                     where, key, (long long)k->min, (long long)k->max, value);
            return -1;
        }
        *(int64_t *)((char *)c + k->offset) = v;
        return 0;
    case KEY_STR:
    case KEY_STR_OPT:
        if (strlen(value) >= k->size || (strlen(value) == 0 && k->type == KEY_STR)) {
            snprintf(err, errlen, "%s: %s: value is empty or longer than %zu bytes", where, key,
                     k->size - 1);
            return -1;
        }
        memcpy((char *)c + k->offset, value, strlen(value) + 1);
        return 0;
    }
    return -1;
}

static char *
trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* The value after '=' (config.h: quoting and comments), in place. Returns NULL when malformed. */
static char *
parse_value(char *v)
{
    v = trim(v);
    char *close = *v == '"' ? strchr(v + 1, '"') : NULL;
    if (close == NULL) {
        v[strcspn(v, "#")] = '\0';
        return trim(v);
    }
    *close = '\0';
    char *rest = trim(close + 1);
    return *rest == '\0' || *rest == '#' ? v + 1 : NULL;
}

/* One "key = value" line, not blank nor a comment; seen[] has the line each key was set on. */
static int
load_line(struct config *c, char *s, const char *where, int lineno, int *seen, char *err,
          size_t errlen)
{
    char *eq = strchr(s, '=');
    if (eq == NULL) {
        snprintf(err, errlen, "%s: expected 'key = value'", where);
        return -1;
    }
    *eq = '\0';
    char *key = trim(s);
    char *val = parse_value(eq + 1);
    if (val == NULL) {
        snprintf(err, errlen, "%s: %s: only blanks or a comment may follow a quoted value", where,
                 key);
        return -1;
    }
    int ki = key_index(key);
    if (ki >= 0 && seen[ki] != 0) {
        snprintf(err, errlen, "%s: duplicate key '%s' (first set on line %d)", where, key,
                 seen[ki]);
        return -1;
    }
    if (config_set(c, key, val, where, err, errlen) != 0)
        return -1;
    seen[ki] = lineno;
    return 0;
}

int
config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
    int rc = -1;
    char line[2048];
    char where[CONFIG_PATH_MAX + 32];
    int lineno = 0, seen[NKEYS] = {0};
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open config file", path);
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        snprintf(where, sizeof(where), "%s:%d", path, lineno);
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(err, errlen, "%s: line too long", where);
            goto out;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        if (load_line(c, s, where, lineno, seen, err, errlen) != 0)
            goto out;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        goto out;
    }
    rc = 0;
out:
    fclose(f);
    return rc;
}

static int
derive(char *dst, size_t len, const char *dir, const char *name)
{
    if (dst[0] != '\0')
        return 0;
    return snprintf(dst, len, "%s/%s", dir, name) < (int)len ? 0 : -1;
}

int
config_finalize(struct config *c, char *err, size_t errlen)
{
    if (derive(c->database, sizeof(c->database), c->data_dir, "aegis.db") != 0 ||
        derive(c->pki_dir, sizeof(c->pki_dir), c->data_dir, "pki") != 0 ||
        derive(c->tls_cert, sizeof(c->tls_cert), c->pki_dir, "server.crt") != 0 ||
        derive(c->tls_key, sizeof(c->tls_key), c->pki_dir, "server.key") != 0 ||
        derive(c->issuance_log, sizeof(c->issuance_log), c->pki_dir, "issuance.log") != 0) {
        snprintf(err, errlen, "derived path too long (data_dir or pki_dir)");
        return -1;
    }
    if (strcmp(c->key_isolation, "auto") != 0 && strcmp(c->key_isolation, "required") != 0 &&
        strcmp(c->key_isolation, "off") != 0) {
        snprintf(err, errlen, "key_isolation: expected auto, required or off");
        return -1;
    }
    return 0;
}

int
config_key_reloadable(const char *key)
{
    return strcmp(key, "log_level") == 0;
}

/* Whether key k has another value in a than in b. */
static int
key_differs(const struct key_def *k, const struct config *a, const struct config *b)
{
    const char *pa = (const char *)a + k->offset, *pb = (const char *)b + k->offset;
    switch (k->type) {
    case KEY_LISTEN:
        return strcmp(a->listen_host, b->listen_host) != 0 || a->listen_port != b->listen_port;
    case KEY_OPT_LISTEN:
        return strcmp(a->metrics_host, b->metrics_host) != 0 || a->metrics_port != b->metrics_port;
    case KEY_LEVEL:
        return strcmp(a->log_level, b->log_level) != 0;
    case KEY_FORMAT:
        return strcmp(a->log_format, b->log_format) != 0;
    case KEY_EVENT_LOOP:
        return a->event_loop_epoll != b->event_loop_epoll;
    case KEY_INT:
        return *(const int64_t *)(const void *)pa != *(const int64_t *)(const void *)pb;
    case KEY_STR:
    case KEY_STR_OPT:
        return strcmp(pa, pb) != 0;
    }
    return 0;
}

const char *
config_next_change(const struct config *a, const struct config *b, size_t *iter)
{
    while (*iter < sizeof(keys) / sizeof(keys[0])) {
        const struct key_def *k = &keys[(*iter)++];
        if (key_differs(k, a, b))
            return k->name;
    }
    return NULL;
}
