#include "ops_metrics.h"

#include "api_handlers.h"
#include "app.h"
#include "lathist.h"
#include "metrics.h"
#include "ratelimit.h"
#include "store.h"
#include "util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* The fields of /proc/self/stat the process_* series need (proc(5)). */
struct proc_stat {
    double cpu_s;   /* utime + stime */
    double start_s; /* since boot */
    uint64_t vsize; /* bytes */
    uint64_t rss_pages;
};

static int
read_proc_stat(struct proc_stat *ps)
{
    char buf[1024];
    unsigned long long f[22]; /* fields 3.. of the line: f[i] is field i + 3 */
    FILE *fp = fopen("/proc/self/stat", "re");
    if (fp == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: fields restart after its last
     * ')'. Field 3 is the state (a letter); the rest are numbers. */
    const char *q = strrchr(buf, ')');
    if (q == NULL || q[1] != ' ' || q[2] == '\0')
        return -1;
    q += 3;
    for (size_t i = 1; i < sizeof(f) / sizeof(f[0]); i++) {
        char *end = NULL;
        f[i] = strtoull(q, &end, 10);
        if (end == q || (*end != ' ' && *end != '\n' && *end != '\0'))
            return -1;
        q = end;
    }
    unsigned long long utime = f[11], stime = f[12], start = f[19], vsize = f[20], rss = f[21];
    double hz = (double)sysconf(_SC_CLK_TCK);
    ps->cpu_s = (double)(utime + stime) / hz;
    ps->start_s = (double)start / hz;
    ps->vsize = vsize;
    ps->rss_pages = rss;
    return 0;
}

/* The boot time, unix s (/proc/stat btime). */
static int64_t
boot_time(void)
{
    char line[256];
    long long bt = 0;
    FILE *f = fopen("/proc/stat", "re");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtoll(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return (int64_t)bt;
}

static long
open_fds(void)
{
    long n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* The standard process collector's series (Prometheus client libraries' process_*). */
static void
collect_process(struct metrics_out *out)
{
    struct proc_stat ps;
    struct rlimit rl;
    long fds = open_fds();
    if (read_proc_stat(&ps) == 0) {
        metrics_family(out, "process_cpu_seconds_total", "counter",
                       "Total user and system CPU time spent in seconds.");
        metrics_printf(out, "process_cpu_seconds_total %.2f\n", ps.cpu_s);
        metrics_family(out, "process_resident_memory_bytes", "gauge",
                       "Resident memory size in bytes.");
        metrics_printf(out, "process_resident_memory_bytes %llu\n",
                       (unsigned long long)ps.rss_pages *
                           (unsigned long long)sysconf(_SC_PAGESIZE));
        metrics_family(out, "process_virtual_memory_bytes", "gauge",
                       "Virtual memory size in bytes.");
        metrics_printf(out, "process_virtual_memory_bytes %llu\n", (unsigned long long)ps.vsize);
        metrics_family(out, "process_start_time_seconds", "gauge",
                       "Start time of the process since unix epoch in seconds.");
        metrics_printf(out, "process_start_time_seconds %.2f\n", (double)boot_time() + ps.start_s);
    }
    if (fds >= 0) {
        metrics_family(out, "process_open_fds", "gauge", "Number of open file descriptors.");
        metrics_printf(out, "process_open_fds %ld\n", fds);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        metrics_family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        metrics_printf(out, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
}

/* A file's size in bytes, 0 when it does not exist (no write-ahead log between checkpoints). */
static long long
file_size(const char *path, const char *suffix)
{
    char p[CONFIG_PATH_MAX + 16];
    struct stat st;
    snprintf(p, sizeof(p), "%s%s", path, suffix);
    return stat(p, &st) == 0 ? (long long)st.st_size : 0;
}

static void
collect_store(const struct app *app, struct metrics_out *out)
{
    metrics_family(out, "aegis_database_size_bytes", "gauge", "Size of the database file.");
    metrics_printf(out, "aegis_database_size_bytes %lld\n", file_size(app->cfg->database, ""));
    metrics_family(out, "aegis_database_wal_size_bytes", "gauge",
                   "Size of the database's write-ahead log (checkpoints keep it short).");
    metrics_printf(out, "aegis_database_wal_size_bytes %lld\n",
                   file_size(app->cfg->database, "-wal"));
    metrics_family(out, "aegis_db_commit_duration_seconds", "histogram",
                   "Time a database COMMIT took (without a flush: the log is flushed apart).");
    metrics_histogram(out, "aegis_db_commit_duration_seconds", "",
                      store_commit_latency(app->st, 0));
    metrics_family(out, "aegis_db_fsync_duration_seconds", "histogram",
                   "Time a flush (fdatasync) of the write-ahead log took: what attestation and "
                   "telemetry acknowledgements wait for.");
    metrics_histogram(out, "aegis_db_fsync_duration_seconds", "", store_commit_latency(app->st, 1));
}

void
opsm_collect(void *ctx, struct metrics_out *out)
{
    const struct app *app = ctx;
    static const char *const names[] = {"challenge", "telemetry", "update_status"};
    const struct ratelimit *rls[] = {app->challenge_rl, app->telemetry_rl, app->update_status_rl};
    collect_process(out);
    collect_store(app, out);
    metrics_family(
        out, "aegis_ingest_queue_capacity_reports", "gauge",
        "Reports the telemetry writer holds at most (ingest_queue_max); beyond it uploads "
        "are answered 503.");
    metrics_printf(out, "aegis_ingest_queue_capacity_reports %lld\n",
                   (long long)app->cfg->ingest_queue_max);
    metrics_family(out, "aegis_ratelimit_refused_total", "counter",
                   "Requests refused by each rate limiter (429; signer_issue: the signer's "
                   "per-tenant issuance rate, 503 signer_busy).");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        metrics_printf(out, "aegis_ratelimit_refused_total{limiter=\"%s\"} %llu\n", names[i],
                       (unsigned long long)ratelimit_refused(rls[i]));
    metrics_printf(out, "aegis_ratelimit_refused_total{limiter=\"signer_issue\"} %llu\n",
                   (unsigned long long)metrics_signer_busy_total(app->metrics));
}

/* The newest notAfter among the tenant's CAs, 0 when it has none. */
static int
newest_ca(store *st, int64_t tenant_id, int64_t now, int64_t *not_after)
{
    struct store_ca *cas = NULL;
    size_t n = 0;
    *not_after = 0;
    if (store_ca_load_all(st, tenant_id, now, &cas, &n) != STORE_OK)
        return -1;
    for (size_t j = 0; j < n; j++)
        *not_after = cas[j].not_after > *not_after ? cas[j].not_after : *not_after;
    store_ca_free(cas, n);
    return 0;
}

int
opsm_fleet(const struct app *app)
{
    int64_t by_state[STORE_DEVICE_STATES], now = util_now();
    struct store_tenant *ts = NULL;
    int64_t *ids = NULL, *na = NULL;
    size_t nt = 0, nca = 0;
    int rc = -1;
    _Static_assert(STORE_DEVICE_STATES == METRICS_DEVICE_STATES, "same device states");
    if (store_device_state_counts(app->st, by_state) != STORE_OK)
        goto out;
    metrics_devices(app->metrics, by_state);
    if (store_tenant_load_all(app->st, &ts, &nt) != STORE_OK)
        goto out;
    ids = calloc(nt + 1, sizeof(*ids));
    na = calloc(nt + 1, sizeof(*na));
    if (ids == NULL || na == NULL)
        goto out;
    for (size_t i = 0; i < nt; i++) {
        if (newest_ca(app->st, ts[i].id, now, &na[nca]) != 0)
            goto out;
        if (na[nca] != 0)
            ids[nca++] = ts[i].id;
    }
    rc = metrics_ca_expiry(app->metrics, ids, na, nca);
out:
    free(ts);
    free(ids);
    free(na);
    return rc;
}

void
opsm_metrics(api_req *r)
{
    size_t len = 0;
    char *text = metrics_render(r->app->metrics, store_error_count(r->app->st), &len);
    if (text == NULL) {
        api_error(r, 500, "internal", "out of memory");
        return;
    }
    api_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

static const struct route ops_table[] = {
    {"GET", "/healthz", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT, api_healthz},
    {"GET", "/readyz", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT, api_readyz},
    {"GET", "/metrics", AUTH_NONE, ROLE_NONE, BODY_NONE, LIMIT_DEFAULT, opsm_metrics},
};

const struct route *
opsm_routes(size_t *n)
{
    *n = sizeof(ops_table) / sizeof(ops_table[0]);
    return ops_table;
}
