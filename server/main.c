/* aegisd: a checklist, then the loop. main() parses the configuration, opens what the daemon
 * serves with (open_all: logging, database, signer, rate limits, metrics, the telemetry writer,
 * device authentication), starts HTTPS, runs the libuv loop until SIGTERM/SIGINT has drained the
 * requests, and closes everything in the one safe order (close_all). struct app is filled before
 * http_start and never written again: handlers on any thread read it without locks. */
#include "app.h"
#include "api.h"
#include "attest_nonce.h"
#include "config.h"
#include "config_check.h"
#include "cron.h"
#include "director.h"
#include "upd_recovery.h"
#include "devauth.h"
#include "http.h"
#include "http_tlskey.h"
#include "isolate.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "ops_metrics.h"
#include "pki.h"
#include "ratelimit.h"
#include "routes.h"
#include "sdnotify.h"
#include "signer.h"
#include "store.h"
#include "util.h"
#include "version.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#define PEM_MAX (64 * 1024)
/* EXTEND_TIMEOUT_USEC asked for per pending migration: 10 minutes (a table rebuild of a large
 * database), far above what one takes on a small one. */
#define MIGRATION_TIMEOUT_USEC (600ULL * 1000000ULL)

struct daemon_state {
    struct config cfg;
    struct app app;
    http_server *http;
    http_server *ops; /* the operations listener (metrics_listen), NULL without one */
    /* where the configuration came from, read again on SIGHUP: the file, then the flags */
    const char *config_file, *flag_listen, *flag_data_dir, *flag_level;
    struct config cfg_loaded; /* as loaded, before start-up adjusted it (raise_nofile) */
    uv_loop_t loop;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t drain_timer;
    uv_timer_t signer_watch;
    uv_timer_t watchdog; /* WATCHDOG=1 pings, when the service manager asks for them */
    struct sdnotify notify;
    int signer_lost; /* the signer's supervisor is gone: stop and exit 1 */
    cron *cron;
    const char **route_labels, **route_methods; /* for metrics, which borrows them */
    uint64_t drain_deadline_ns;
    int draining;
    const char *ready_file;
    char *tls_cert; /* the certificate chain (PEM), read before aegisd shuts itself off the PKI */
    int port;       /* the bound port, once listening */
    int ops_port;   /* the operations listener's, 0 without one */
    int check_only;
};

static void
usage(FILE *f)
{
    fprintf(
        f,
        "usage: aegisd [options]\n"
        "  -c, --config FILE      configuration file, e.g. /etc/aegis/aegisd.conf; every key is\n"
        "                         in the reference: share/doc/aegis/aegisd.conf under the\n"
        "                         install prefix (/usr/local), deploy/aegisd.conf in the source\n"
        "  -l, --listen HOST:PORT address to serve HTTPS on (default 127.0.0.1:8443)\n"
        "  -d, --data-dir DIR     data directory: database, PKI (default var)\n"
        "      --log-level LEVEL  debug, info, warn or error\n"
        "      --ready-file FILE  write the bound port to FILE once serving\n"
        "      --check-config     validate the configuration and the files and directories it\n"
        "                         names (they exist and are usable), then exit\n"
        "  -V, --version          print the version and exit\n"
        "  -h, --help             this help\n");
}

/* The configuration from its file and the flags, on defaults: at start and on SIGHUP. Returns 0 /
 * -1 (message in err). */
static int
load_config(const struct daemon_state *d, struct config *c, char *err, size_t errlen)
{
    config_defaults(c);
    /* The file first, then flags on top of it. */
    if ((d->config_file && config_load_file(c, d->config_file, err, errlen) != 0) ||
        (d->flag_listen && config_set(c, "listen", d->flag_listen, "--listen", err, errlen) != 0) ||
        (d->flag_data_dir &&
         config_set(c, "data_dir", d->flag_data_dir, "--data-dir", err, errlen) != 0) ||
        (d->flag_level &&
         config_set(c, "log_level", d->flag_level, "--log-level", err, errlen) != 0) ||
        config_finalize(c, err, errlen) != 0)
        return -1;
    return 0;
}

/* Returns 0 to go on, 1 to exit 0 (help/version), -1 to exit 2 (usage or config error). */
static int
parse_args(struct daemon_state *d, int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"data-dir", required_argument, NULL, 'd'},
                                         {"log-level", required_argument, NULL, 'L'},
                                         {"ready-file", required_argument, NULL, 'r'},
                                         {"check-config", no_argument, NULL, 'C'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    char err[1200];
    int c;
    while ((c = getopt_long(argc, argv, "c:l:d:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            d->config_file = optarg;
            break;
        case 'l':
            d->flag_listen = optarg;
            break;
        case 'd':
            d->flag_data_dir = optarg;
            break;
        case 'L':
            d->flag_level = optarg;
            break;
        case 'r':
            d->ready_file = optarg;
            break;
        case 'C':
            d->check_only = 1;
            break;
        case 'V':
            printf("aegisd %s\n", AEGIS_VERSION);
            return 1;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "aegisd: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (load_config(d, &d->cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "aegisd: %s\n", err);
        return -1;
    }
    d->cfg_loaded = d->cfg;
    return 0;
}

static int
setup_logging(const struct config *cfg)
{
    enum log_level lvl = LOG_INFO;
    enum log_format fmt = LOG_FORMAT_TEXT;
    log_parse_level(cfg->log_level, &lvl);
    log_set_level(lvl);
    log_parse_format(cfg->log_format, &fmt); /* config_set checked both */
    log_set_format(fmt);
    if (log_open(cfg->log_file) != 0) {
        fprintf(stderr, "aegisd: cannot open log file %s\n", cfg->log_file);
        return -1;
    }
    return 0;
}

static int
open_store(struct daemon_state *d)
{
    char err[512];
    int applied = 0, version = 0;
    int pool = (d->cfg.threads > 0 ? (int)d->cfg.threads : util_ncpu()) + 2;
    if (store_open(d->cfg.database, pool, &d->app.st, err, sizeof(err)) != STORE_OK) {
        log_error("msg=\"cannot open database %s: %s\"", d->cfg.database, err);
        return -1;
    }
    /* On a large database the migrations can outlast systemd's start timeout (TimeoutStartSec):
     * ask for more, per pending migration, so that an upgrade is not killed halfway. */
    int pending = 0;
    if (store_migrations_pending(d->app.st, &pending) == STORE_OK && pending > 0)
        sdnotify_sendf(&d->notify,
                       "EXTEND_TIMEOUT_USEC=%llu\nSTATUS=applying %d database migrations",
                       (unsigned long long)pending * MIGRATION_TIMEOUT_USEC, pending);
    if (store_migrate(d->app.st, &applied, err, sizeof(err)) != STORE_OK) {
        log_error("msg=\"database %s refused: %s\"", d->cfg.database, err);
        return -1;
    }
    if (attest_nonce_key_load(d->app.st, d->app.nonce_key) != 0)
        return -1;
    store_schema_version(d->app.st, &version);
    log_info("msg=\"database ready\" path=%s schema_version=%d migrations_applied=%d",
             d->cfg.database, version, applied);
    return 0;
}

static int
open_metrics(struct daemon_state *d)
{
    size_t n;
    const struct route *t = routes_table(&n);
    d->route_labels = calloc(n, sizeof(char *));
    d->route_methods = calloc(n, sizeof(char *));
    if (d->route_labels == NULL || d->route_methods == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        d->route_labels[i] = t[i].pattern;
        d->route_methods[i] = t[i].method;
    }
    d->app.metrics = metrics_new(n, d->route_labels, d->route_methods);
    if (d->app.metrics == NULL)
        return -1;
    metrics_set_collector(d->app.metrics, opsm_collect, &d->app);
    return 0;
}

/* Forks the signer process: before anything else starts a thread or reads a secret (the signer
 * is a copy of this process as it is now). */
static int
open_signer(struct daemon_state *d)
{
    char err[512];
    int64_t threads = d->cfg.threads > 0 ? d->cfg.threads : util_ncpu();
    struct signer_opts o = {d->cfg.pki_dir,
                            d->cfg.tls_key,
                            d->cfg.issuance_log,
                            d->cfg.cert_lifetime_s,
                            (double)d->cfg.signer_issue_rate,
                            (double)d->cfg.signer_issue_burst,
                            d->cfg.signer_timeout_ms,
                            (size_t)threads + 4,
                            d->cfg.tls_cert};
    d->app.sg = signer_start(&o, err, sizeof(err));
    if (d->app.sg == NULL)
        log_error("msg=\"signer: %s\"", err);
    return d->app.sg != NULL ? 0 : -1;
}

static int
open_rate_limits(struct daemon_state *d)
{
    d->app.challenge_rl = ratelimit_new((double)d->cfg.challenge_rate,
                                        (double)d->cfg.challenge_burst, RATELIMIT_DEFAULT_CAPACITY);
    d->app.telemetry_rl = ratelimit_new((double)d->cfg.telemetry_rate,
                                        (double)d->cfg.telemetry_burst, RATELIMIT_DEFAULT_CAPACITY);
    d->app.update_status_rl =
        ratelimit_new((double)d->cfg.update_status_rate, (double)d->cfg.update_status_burst,
                      RATELIMIT_DEFAULT_CAPACITY);
    return d->app.challenge_rl != NULL && d->app.telemetry_rl != NULL &&
                   d->app.update_status_rl != NULL
               ? 0
               : -1;
}

/* Descriptors the daemon needs besides its connections and libmicrohttpd's accept slack: database
 * (the telemetry writer's connection and log), log files, the listen socket, libuv, files read at
 * start; plus, per thread, libmicrohttpd's epoll and wake-up descriptors and a pooled database
 * connection (file, log, shared memory). */
#define NOFILE_BASE 192
#define NOFILE_PER_THREAD 8

/* The fewest connections max_connections is lowered to for a small open-files limit. */
#define MIN_CONNECTIONS 16

/* Raises the soft open-files limit (up to the hard one) to what max_connections needs: at the
 * usual soft limit of 1024 a full connection table would leave accept() failing with EMFILE, and a
 * connection accepted by no one waits in the listen backlog until its client gives up. When the
 * hard limit is lower, max_connections is lowered to fit (a warning says so): a connection beyond
 * it is then refused at once (http_conns.h). */
static void
raise_nofile(struct config *cfg)
{
    struct rlimit rl;
    int64_t threads = cfg->threads > 0 ? cfg->threads : util_ncpu();
    rlim_t reserve = NOFILE_BASE + HTTP_ACCEPT_SLACK + (rlim_t)threads * NOFILE_PER_THREAD;
    rlim_t need = (rlim_t)cfg->max_connections + reserve;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        log_warn("msg=\"cannot read the open files limit: %s\"", strerror(errno));
        return;
    }
    if (rl.rlim_cur < need) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = old;
    }
    if (rl.rlim_cur < need) {
        int64_t fit = rl.rlim_cur > reserve + MIN_CONNECTIONS ? (int64_t)(rl.rlim_cur - reserve)
                                                              : MIN_CONNECTIONS;
        log_warn("msg=\"open files limit below what max_connections needs: max_connections "
                 "lowered\" limit=%llu needed=%llu max_connections=%lld",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)need, (long long)fit);
        cfg->max_connections = fit;
    } else {
        log_info("msg=\"open files limit\" limit=%llu needed=%llu", (unsigned long long)rl.rlim_cur,
                 (unsigned long long)need);
    }
}

/* Key files the restriction is proved with: the TLS key, the service root's, and one issuing CA's
 * and one online TUF key's when there are any. */
static size_t
key_probes(const struct config *c, char bufs[][CONFIG_PATH_MAX + 64], const char **probes,
           size_t max)
{
    static const char *const patterns[] = {"%s/root.key", "%s/tenants/*/ca-*.key",
                                           "%s/tenants/*/*.ed25519"};
    size_t n = 0;
    probes[n++] = c->tls_key;
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]) && n < max; i++) {
        glob_t g;
        char pat[CONFIG_PATH_MAX + 64];
        snprintf(pat, sizeof(pat), patterns[i], c->pki_dir);
        if (glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0) {
            snprintf(bufs[n], sizeof(bufs[n]), "%s", g.gl_pathv[0]);
            probes[n] = bufs[n];
            n++;
        }
        globfree(&g);
    }
    return n;
}

/* Shuts aegisd off the key files (isolate.h), which only the signer reads from now on: after the
 * store is open (its files exist) and before any thread starts (Landlock binds the calling thread
 * and what it starts later). */
static int
isolate_self(struct daemon_state *d)
{
    const struct config *c = &d->cfg;
    char err[1200], bufs[4][CONFIG_PATH_MAX + 64];
    const char *keys[] = {c->pki_dir, c->tls_key, c->issuance_log};
    const char *probes[4];
    enum isolate_mode mode = ISOLATE_AUTO;
    int abi = 0;
    if (isolate_parse_mode(c->key_isolation, &mode) != 0) /* config_finalize checked it */
        return -1;
    if ((d->tls_cert = util_read_file(c->tls_cert, PEM_MAX, NULL)) == NULL) {
        log_error("msg=\"cannot read TLS certificate %s\"", c->tls_cert);
        return -1;
    }
    size_t np = key_probes(c, bufs, probes, 4);
    struct isolate_paths p = {
        keys, 3, probes, np, c->database, c->data_dir, c->log_file, d->ready_file, d->config_file};
    if (isolate_apply(&p, mode, &abi, err, sizeof(err)) != 0) {
        log_error("msg=\"%s\" hint=\"key_isolation = off disables it (not recommended)\"", err);
        return -1;
    }
    /* SQLite read SQLITE_TMPDIR when the store opened, before isolate_apply set it: without this
     * its spill files (a GROUP BY or sort over a large table) go to /var/tmp, which Landlock
     * refuses. */
    if (store_temp_dir(getenv("SQLITE_TMPDIR")) != STORE_OK) {
        log_error("msg=\"cannot set the SQLite temporary directory\"");
        return -1;
    }
    if (abi > 0)
        log_info("msg=\"keys isolated\" mechanism=landlock abi=%d probes=%zu", abi, np);
    else if (mode == ISOLATE_AUTO)
        log_warn("msg=\"keys NOT isolated: this kernel has no Landlock, aegisd can open the key "
                 "files\" hint=\"key_isolation = required refuses to start without it\"");
    else
        log_warn("msg=\"key isolation off (key_isolation = off): aegisd can open the key files\"");
    return 0;
}

/* The steps before HTTPS, in order; each logs its own failure (out of memory aside). */
static int
open_all(struct daemon_state *d)
{
    if (sodium_init() < 0 || setup_logging(&d->cfg) != 0)
        return -1;
    log_info("msg=starting version=%s data_dir=%s", AEGIS_VERSION, d->cfg.data_dir);
    char err[160];
    if (sdnotify_init(&d->notify, err, sizeof(err)) != 0)
        log_warn("msg=\"%s: the service manager will not hear from aegisd\"", err);
    sdnotify_send(&d->notify, "STATUS=starting: signer, database migrations, key isolation");
    raise_nofile(&d->cfg);
    if (open_signer(d) != 0 || open_store(d) != 0 || isolate_self(d) != 0 ||
        open_rate_limits(d) != 0 || open_metrics(d) != 0)
        return -1;
    /* after the metrics, which it counts into */
    d->app.ingest = ingest_new(d->app.st, (size_t)d->cfg.ingest_queue_max, d->app.metrics);
    if (d->app.ingest == NULL)
        return -1;
    d->app.devauth = devauth_new(d->app.st);
    if ((d->app.director = director_new(d->app.st, d->app.sg)) == NULL ||
        (d->app.recovery = upd_recovery_new()) == NULL)
        return -1;
    director_set_cache_max(d->app.director, (size_t)d->cfg.director_cache_max);
    return d->app.devauth != NULL ? 0 : -1;
}

/* The reverse of open_all and start_http, in the one safe order for requests still in flight
 * (drain_timeout may have cut the drain short): the telemetry writer answers what it holds and
 * refuses the rest before http_stop (which would drop suspended requests), and is freed only after
 * it (no handler can call it any more). Accepts a partly opened daemon. */
static void
close_all(struct daemon_state *d)
{
    ingest_stop(d->app.ingest);
    http_stop(d->http);
    d->http = NULL;
    http_stop(d->ops);
    d->ops = NULL;
    ingest_free(d->app.ingest);
    devauth_free(d->app.devauth);
    director_free(d->app.director);
    upd_recovery_free(d->app.recovery);
    signer_free(d->app.sg);
    ratelimit_free(d->app.challenge_rl);
    ratelimit_free(d->app.telemetry_rl);
    ratelimit_free(d->app.update_status_rl);
    metrics_free(d->app.metrics);
    store_close(d->app.st);
    sodium_memzero(d->app.nonce_key, sizeof(d->app.nonce_key));
    free(d->route_labels);
    free(d->route_methods);
    free(d->tls_cert);
}

/* The operations listener (metrics_listen): plain HTTP for /metrics, /healthz and /readyz, so that
 * scrapers and probes need not reach the devices' port. Not quiesced by a drain: /readyz answers
 * 503 there until the process exits. */
static int
start_ops(struct daemon_state *d)
{
    char err[512];
    size_t n;
    int port = 0;
    if (d->cfg.metrics_port < 0)
        return 0;
    int fd = http_listen(d->cfg.metrics_host, d->cfg.metrics_port, &port, err, sizeof(err));
    const struct route *routes = opsm_routes(&n);
    if (fd < 0 || (d->ops = http_start_plain(&d->app, routes, n, fd, err, sizeof(err))) == NULL) {
        log_error("msg=\"metrics_listen: %s\"", err);
        return -1;
    }
    log_info("msg=\"operations listener\" url=http://%s%s%s:%d/metrics",
             strchr(d->cfg.metrics_host, ':') ? "[" : "", d->cfg.metrics_host,
             strchr(d->cfg.metrics_host, ':') ? "]" : "", port);
    d->ops_port = port;
    return 0;
}

static int
start_http(struct daemon_state *d)
{
    char err[512];
    int port = 0, rc = -1;
    int fd = http_listen(d->cfg.listen_host, d->cfg.listen_port, &port, err, sizeof(err));
    if (fd < 0) {
        log_error("msg=\"%s\"", err);
        goto out;
    }
    size_t nroutes;
    const struct route *routes = routes_table(&nroutes);
    d->http = http_start(&d->app, routes, nroutes, fd, d->tls_cert, err, sizeof(err));
    if (d->http == NULL) {
        log_error("msg=\"%s\"", err);
        goto out;
    }
    log_info("msg=listening url=https://%s%s%s:%d threads=%lld",
             strchr(d->cfg.listen_host, ':') ? "[" : "", d->cfg.listen_host,
             strchr(d->cfg.listen_host, ':') ? "]" : "", port,
             (long long)(d->cfg.threads > 0 ? d->cfg.threads : util_ncpu()));
    d->port = port;
    metrics_tls_cert(d->app.metrics, http_tls_not_after(d->http));
    rc = start_ops(d);
out:
    return rc;
}

static void
on_drain_tick(uv_timer_t *t)
{
    struct daemon_state *d = t->data;
    int active = http_active(d->http);
    if (active > 0 && util_mono_ns() < d->drain_deadline_ns)
        return;
    if (active > 0)
        log_warn("msg=\"drain timeout, closing %d requests\"", active);
    uv_stop(&d->loop);
}

static void
begin_drain(struct daemon_state *d, int signum)
{
    if (d->draining)
        return;
    d->draining = 1;
    metrics_set_draining(d->app.metrics); /* /readyz: 503 from now on, on both listeners */
    log_info("msg=\"shutting down: draining requests\" signal=%d active=%d", signum,
             http_active(d->http));
    sdnotify_sendf(&d->notify, "STOPPING=1\nSTATUS=draining %d requests (at most %lld s)",
                   http_active(d->http), (long long)d->cfg.drain_timeout_s);
    http_quiesce(d->http);
    d->drain_deadline_ns = util_mono_ns() + (uint64_t)d->cfg.drain_timeout_s * 1000000000ull;
    uv_timer_start(&d->drain_timer, on_drain_tick, 0, 20);
}

/* SIGHUP: the configuration read again. The keys config_key_reloadable names take effect; a change
 * of any other is logged as needing a restart (the running value stays). */
static int
reload_config(struct daemon_state *d)
{
    struct config *c = malloc(sizeof(*c));
    char err[1200];
    enum log_level lvl = LOG_INFO;
    size_t it = 0;
    int rc = -1;
    if (c == NULL || load_config(d, c, err, sizeof(err)) != 0) {
        log_error("msg=\"configuration not reloaded\" err=\"%s\"", c ? err : "out of memory");
        goto out;
    }
    for (const char *k; (k = config_next_change(&d->cfg_loaded, c, &it)) != NULL;) {
        if (!config_key_reloadable(k))
            log_warn("msg=\"configuration key changed: needs a restart\" key=%s", k);
    }
    log_parse_level(c->log_level, &lvl);
    log_set_level(lvl);
    log_info("msg=\"configuration reloaded\" log_level=%s", c->log_level);
    rc = 0;
out:
    free(c);
    return rc;
}

/* SIGHUP: the TLS certificate renewed from the same files (docs/metrics.md "Reloading"). The signer
 * checks the new pair first without using it, aegisd checks the chain, and only then the signer
 * switches keys and aegisd serves the new chain to new handshakes. Files that do not pass leave the
 * old pair serving. */
static int
reload_tls(struct daemon_state *d)
{
    char err[600] = "", serial[41];
    char *chain = NULL;
    int rc = signer_tls_reload(d->app.sg, 0, &chain, err, sizeof(err));
    if (rc == 0)
        rc = http_tlskey_check_chain(chain, err, sizeof(err));
    free(chain);
    chain = NULL;
    if (rc == 0)
        rc = signer_tls_reload(d->app.sg, 1, &chain, err, sizeof(err));
    if (rc == 0)
        rc = http_reload_tls(d->http, chain, err, sizeof(err));
    free(chain);
    metrics_tls_reload(d->app.metrics, rc == 0);
    if (rc != 0) {
        log_error("msg=\"TLS certificate not renewed: the previous one still serves\" err=\"%s\"",
                  err);
        return -1;
    }
    metrics_tls_cert(d->app.metrics, http_tls_not_after(d->http));
    http_tls_serial(d->http, serial);
    log_info("msg=\"TLS certificate renewed\" serial=%s not_after=%lld", serial,
             (long long)http_tls_not_after(d->http));
    return 0;
}

/* READY=1 with what `systemctl status` shows while serving; after a reload, how it went. */
static void
notify_serving(const struct daemon_state *d, const char *note)
{
    char ops[32] = "";
    if (d->ops_port > 0)
        snprintf(ops, sizeof(ops), ", metrics on %d", d->ops_port);
    sdnotify_sendf(&d->notify, "READY=1\nSTATUS=serving HTTPS on port %d%s%s%s", d->port, ops,
                   note ? "; " : "", note ? note : "");
}

static void
on_signal(uv_signal_t *s, int signum)
{
    struct daemon_state *d = s->data;
    if (signum == SIGHUP) {
        /* while draining, READY=1 would tell the service manager the drain was over */
        if (!d->draining)
            sdnotify_reloading(&d->notify, "reloading: log file, log_level, TLS certificate");
        if (log_reopen() != 0)
            log_error("msg=\"cannot reopen log file\"");
        else
            log_info("msg=\"log reopened\"");
        int conf = reload_config(d), tls = reload_tls(d);
        /* what `systemctl status` shows until the next reload */
        static const char *const how[2][2] = {
            {"reloaded", "reloaded, TLS certificate NOT renewed (see the log)"},
            {"configuration NOT reloaded (see the log)",
             "configuration NOT reloaded, TLS certificate NOT renewed (see the log)"}};
        if (!d->draining)
            notify_serving(d, how[conf != 0][tls != 0]);
        return;
    }
    begin_drain(d, signum);
}

/* The signer's supervisor restarts its worker; if the supervisor itself is gone, no TLS handshake
 * can be signed any more and aegisd cannot fork a new signer: it drains and exits 1, for its
 * service manager to start both again (signer.h signer_alive). */
static void
on_signer_watch(uv_timer_t *t)
{
    struct daemon_state *d = t->data;
    if (d->signer_lost || signer_alive(d->app.sg))
        return;
    d->signer_lost = 1;
    log_error("msg=\"the signer process is gone: stopping\" hint=\"the service manager restarts "
              "aegisd and its signer\"");
    begin_drain(d, 0);
}

/* The loop still turns: a hung loop misses these and the service manager kills and restarts
 * aegisd (WatchdogSec=). */
static void
on_watchdog(uv_timer_t *t)
{
    const struct daemon_state *d = t->data;
    sdnotify_send(&d->notify, "WATCHDOG=1");
}

/* Tells whoever waits for the daemon (tests, scripts) the bound port. Written once the signal
 * handlers are installed, so a SIGTERM sent as soon as the file appears drains instead of killing.
 * A rendezvous, not state: no fsync. */
static int
write_ready_file(const struct daemon_state *d)
{
    char buf[16];
    if (d->ready_file == NULL)
        return 0;
    int n = snprintf(buf, sizeof(buf), "%d\n", d->port);
    assert(n > 0 && (size_t)n < sizeof(buf));
    if (util_write_file_flags(d->ready_file, buf, (size_t)n, 0644, UTIL_WRITE_NOSYNC) != 0) {
        log_error("msg=\"cannot write ready file %s\"", d->ready_file);
        return -1;
    }
    return 0;
}

static int
run_loop(struct daemon_state *d)
{
    if (uv_loop_init(&d->loop) != 0)
        return -1;
    uv_signal_t *sigs[] = {&d->sigterm, &d->sigint, &d->sighup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&d->loop, sigs[i]);
        sigs[i]->data = d;
        uv_signal_start(sigs[i], on_signal, nums[i]);
    }
    uv_timer_init(&d->loop, &d->drain_timer);
    d->drain_timer.data = d;
    uv_timer_init(&d->loop, &d->signer_watch);
    d->signer_watch.data = d;
    uv_timer_start(&d->signer_watch, on_signer_watch, 500, 500);
    d->cron = cron_start(&d->loop, &d->app);
    if (d->cron == NULL)
        log_warn("msg=\"periodic jobs not started: out of memory\"");
    uv_timer_init(&d->loop, &d->watchdog);
    d->watchdog.data = d;
    if (d->notify.watchdog_usec > 0) {
        /* twice per period, as sd_watchdog_enabled(3) advises: one late tick is not a kill */
        uint64_t ms = d->notify.watchdog_usec / 2000;
        uv_timer_start(&d->watchdog, on_watchdog, 0, ms > 0 ? ms : 1);
    }
    int rc = write_ready_file(d);
    if (rc == 0) {
        notify_serving(d, NULL);
        uv_run(&d->loop, UV_RUN_DEFAULT);
    }
    cron_stop(d->cron);
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)sigs[i], NULL);
    uv_close((uv_handle_t *)&d->drain_timer, NULL);
    uv_close((uv_handle_t *)&d->signer_watch, NULL);
    uv_close((uv_handle_t *)&d->watchdog, NULL);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_loop_close(&d->loop);
    return d->signer_lost ? -1 : rc;
}

int
main(int argc, char **argv)
{
    struct daemon_state d;
    int rc = 1;
    memset(&d, 0, sizeof(d));
    d.app.cfg = &d.cfg;

    int pa = parse_args(&d, argc, argv);
    if (pa != 0)
        return pa > 0 ? 0 : 2;
    if (d.check_only) {
        int problems = config_check_paths(&d.cfg, stderr);
        if (problems > 0) {
            fprintf(stderr, "aegisd: %d problem%s with the files and directories named\n", problems,
                    problems == 1 ? "" : "s");
            return 2;
        }
        printf("configuration ok\n");
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    if (open_all(&d) == 0 && start_http(&d) == 0 && run_loop(&d) == 0) {
        log_info("msg=stopped");
        rc = 0;
    } else {
        sdnotify_send(&d.notify, "STATUS=failed: see the log");
    }
    close_all(&d);
    return rc;
}
