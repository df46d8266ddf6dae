/* loadgen: a keep-alive HTTPS load generator for the ingest benchmark, on libcurl's multi
 * interface.
 *
 *   loadgen telemetry --url URL --cacert F --fleet DIR [--devices N] [--concurrency C] [--seconds
 * S] loadgen get --url URL --cacert F [--concurrency C] [--seconds S]
 *
 * telemetry: C connections, each as one simulated device (mutual TLS with the device's stored
 * certificate from DIR/dev-NNNNN/storage/credential.json), POSTing batches of 1 to 10 crash reports
 * (a device's usual backlog) to /v1/device/telemetry back to back; counts the reports the service
 * acknowledged ("stored"). get: C connections GETting URL back to back (the reference: nginx
 * serving a static file). Last line: key=value figures. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CONC 1024
#define MAX_LAT (1u << 22)

struct conn {
    CURL *easy;
    struct curl_slist *hdrs;
    char *key_pem, *cert_pem;
    char *body;
    size_t body_len;
    char *resp;
    size_t resp_len, resp_cap;
    uint64_t next_report_id;
    unsigned batch;
    double started;
    unsigned rng;
};

struct run {
    const char *mode, *url, *cacert, *fleet;
    long devices, concurrency, seconds;
    uint64_t requests, ok, reports_acked, status_429, status_503, other;
    double *lat;
    size_t nlat;
};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t
on_data(char *p, size_t sz, size_t n, void *arg)
{
    struct conn *c = arg;
    size_t len = sz * n;
    if (c->resp_len + len + 1 > c->resp_cap) {
        size_t cap = (c->resp_len + len + 1) * 2;
        char *np = realloc(c->resp, cap);
        if (np == NULL)
            return 0;
        c->resp = np;
        c->resp_cap = cap;
    }
    memcpy(c->resp + c->resp_len, p, len);
    c->resp_len += len;
    c->resp[c->resp_len] = '\0';
    return len;
}

static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    long n;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && n < (1 << 20) &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/* The device's certificate and key from its stored credential. */
static int
load_device(struct run *r, long i, struct conn *c)
{
    char path[4096];
    json_error_t e;
    snprintf(path, sizeof(path), "%s/dev-%05ld/storage/credential.json", r->fleet, i);
    char *text = read_file(path);
    json_t *root = text ? json_loads(text, 0, &e) : NULL;
    free(text);
    const char *key = json_string_value(json_object_get(root, "key"));
    const char *cert = json_string_value(json_object_get(root, "certificate"));
    if (key == NULL || cert == NULL) {
        fprintf(stderr, "loadgen: no credential in %s (attest the fleet first)\n", path);
        json_decref(root);
        return -1;
    }
    c->key_pem = strdup(key);
    c->cert_pem = strdup(cert);
    json_decref(root);
    return c->key_pem && c->cert_pem ? 0 : -1;
}

static unsigned
rnd(struct conn *c)
{
    c->rng = c->rng * 1103515245u + 12345u;
    return c->rng >> 8;
}

/* A batch of 1..10 crash reports, per docs/telemetry.md. */
static int
make_batch(struct conn *c)
{
    static const char *const components[] = {"aegis-os", "aegis-app", "net-stack"};
    static const char *const reasons[] = {"hardfault", "watchdog", "assert"};
    json_t *reports = json_array();
    c->batch = 1 + rnd(c) % 10;
    for (unsigned i = 0; i < c->batch; i++) {
        char pc[24], lr[24], ra[24];
        unsigned k = rnd(c) % 3;
        snprintf(pc, sizeof(pc), "0x%x", 0x08001000u + (rnd(c) % 16) * 4);
        snprintf(lr, sizeof(lr), "0x%x", 0x08002000u + (rnd(c) % 16) * 4);
        snprintf(ra, sizeof(ra), "0x%x", 0x08003000u + (rnd(c) % 16) * 4);
        json_array_append_new(
            reports,
            json_pack("{s:s, s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:[s], s:{s:s}, s:I}", "type",
                      "crash", "report_id", (json_int_t)c->next_report_id++, "boot_id",
                      "00112233445566778899aabbccddeeff", "uptime_s", (json_int_t)(rnd(c) % 86400),
                      "component", components[k], "image_version", "2.1.0", "reason", reasons[k],
                      "pc", pc, "lr", lr, "return_addresses", ra, "fault_registers", "cfsr",
                      "0x8200", "free_memory", (json_int_t)(rnd(c) % 65536)));
    }
    json_t *root = json_pack("{s:i, s:i, s:o}", "version", 1, "dropped", 0, "reports", reports);
    free(c->body);
    c->body = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (c->body == NULL)
        return -1;
    c->body_len = strlen(c->body);
    return 0;
}

static int
start(struct run *r, CURLM *multi, struct conn *c)
{
    c->resp_len = 0;
    if (strcmp(r->mode, "telemetry") == 0) {
        if (make_batch(c) != 0)
            return -1;
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)c->body_len);
    }
    c->started = now_s();
    return curl_multi_add_handle(multi, c->easy) == CURLM_OK ? 0 : -1;
}

static int
setup(struct run *r, struct conn *c, long i)
{
    struct curl_blob blob;
    c->easy = curl_easy_init();
    c->rng = (unsigned)(i * 2654435761u + (unsigned)time(NULL));
    /* Report ids above any earlier run's, so nothing is a duplicate. */
    c->next_report_id = (uint64_t)time(NULL) * 100000u;
    if (c->easy == NULL)
        return -1;
    curl_easy_setopt(c->easy, CURLOPT_URL, r->url);
    curl_easy_setopt(c->easy, CURLOPT_CAINFO, r->cacert);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT, 30L);
    if (strcmp(r->mode, "telemetry") == 0) {
        if (load_device(r, i % r->devices, c) != 0)
            return -1;
        blob.flags = CURL_BLOB_COPY;
        blob.data = c->cert_pem;
        blob.len = strlen(c->cert_pem);
        curl_easy_setopt(c->easy, CURLOPT_SSLCERT_BLOB, &blob);
        curl_easy_setopt(c->easy, CURLOPT_SSLCERTTYPE, "PEM");
        blob.data = c->key_pem;
        blob.len = strlen(c->key_pem);
        curl_easy_setopt(c->easy, CURLOPT_SSLKEY_BLOB, &blob);
        curl_easy_setopt(c->easy, CURLOPT_SSLKEYTYPE, "PEM");
        c->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->hdrs);
    }
    return 0;
}

static void
finish(struct run *r, struct conn *c, CURLcode res)
{
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    r->requests++;
    if (r->nlat < MAX_LAT)
        r->lat[r->nlat++] = (now_s() - c->started) * 1000.0;
    if (res != CURLE_OK || status == 0) {
        r->other++;
        return;
    }
    if (status == 429) {
        r->status_429++;
        return;
    }
    if (status == 503) {
        r->status_503++;
        return;
    }
    if (status != 200) {
        r->other++;
        return;
    }
    r->ok++;
    if (strcmp(r->mode, "telemetry") == 0) {
        json_t *root = json_loadb(c->resp, c->resp_len, 0, NULL);
        r->reports_acked += (uint64_t)json_integer_value(json_object_get(root, "stored"));
        json_decref(root);
    }
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int
run_load(struct run *r)
{
    struct conn *conns = calloc((size_t)r->concurrency, sizeof(*conns));
    CURLM *multi = curl_multi_init();
    int rc = 1;
    r->lat = malloc(MAX_LAT * sizeof(double));
    if (conns == NULL || multi == NULL || r->lat == NULL)
        goto out;
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, r->concurrency * 2);
    for (long i = 0; i < r->concurrency; i++)
        if (setup(r, &conns[i], i) != 0 || start(r, multi, &conns[i]) != 0)
            goto out;
    double t0 = now_s(), end = t0 + (double)r->seconds;
    long running = r->concurrency;
    while (running > 0) {
        int still = 0, msgs = 0;
        curl_multi_perform(multi, &still);
        CURLMsg *m;
        while ((m = curl_multi_info_read(multi, &msgs)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            struct conn *c = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            CURLcode res = m->data.result;
            curl_multi_remove_handle(multi, m->easy_handle);
            finish(r, c, res);
            if (now_s() < end && start(r, multi, c) == 0)
                continue;
            running--;
        }
        curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    double elapsed = now_s() - t0;
    qsort(r->lat, r->nlat, sizeof(double), cmp_double);
    double p50 = r->nlat ? r->lat[r->nlat / 2] : 0, p99 = r->nlat ? r->lat[r->nlat * 99 / 100] : 0;
    printf("%s: %llu requests in %.1f s, %llu ok, 429=%llu 503=%llu errors=%llu\n", r->mode,
           (unsigned long long)r->requests, elapsed, (unsigned long long)r->ok,
           (unsigned long long)r->status_429, (unsigned long long)r->status_503,
           (unsigned long long)r->other);
    printf("requests_per_s=%.0f reports_per_s=%.0f p50_ms=%.2f p99_ms=%.2f errors=%llu\n",
           (double)r->ok / elapsed, (double)r->reports_acked / elapsed, p50, p99,
           (unsigned long long)(r->other + r->status_503 + r->status_429));
    rc = 0;
out:
    for (long i = 0; conns != NULL && i < r->concurrency; i++) {
        if (conns[i].easy != NULL) {
            curl_multi_remove_handle(multi, conns[i].easy);
            curl_easy_cleanup(conns[i].easy);
        }
        curl_slist_free_all(conns[i].hdrs);
        free(conns[i].key_pem);
        free(conns[i].cert_pem);
        free(conns[i].body);
        free(conns[i].resp);
    }
    curl_multi_cleanup(multi);
    free(conns);
    free(r->lat);
    return rc;
}

int
main(int argc, char **argv)
{
    struct run r;
    memset(&r, 0, sizeof(r));
    r.devices = 1000;
    r.concurrency = 64;
    r.seconds = 10;
    if (argc < 2) {
        fprintf(stderr, "usage: loadgen telemetry|get --url URL --cacert F [--fleet DIR] "
                        "[--devices N] [--concurrency C] [--seconds S]\n");
        return 2;
    }
    r.mode = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--url") == 0)
            r.url = v;
        else if (strcmp(k, "--cacert") == 0)
            r.cacert = v;
        else if (strcmp(k, "--fleet") == 0)
            r.fleet = v;
        else if (strcmp(k, "--devices") == 0)
            r.devices = strtol(v, NULL, 10);
        else if (strcmp(k, "--concurrency") == 0)
            r.concurrency = strtol(v, NULL, 10);
        else if (strcmp(k, "--seconds") == 0)
            r.seconds = strtol(v, NULL, 10);
        else {
            fprintf(stderr, "loadgen: unknown option %s\n", k);
            return 2;
        }
    }
    if (r.url == NULL || r.cacert == NULL || r.concurrency < 1 || r.concurrency > MAX_CONC ||
        r.seconds < 1 || r.devices < 1 ||
        (strcmp(r.mode, "telemetry") == 0 ? r.fleet == NULL : strcmp(r.mode, "get") != 0)) {
        fprintf(stderr, "loadgen: bad arguments\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = run_load(&r);
    curl_global_cleanup();
    return rc;
}
