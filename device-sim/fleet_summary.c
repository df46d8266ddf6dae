/* fleet_summary: the summary of "run" and "whoami" (fleet.h): outcomes and latencies per step,
 * faults, per-device results, as JSON or text. */
#include "fleet.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

/* --- summary --------------------------------------------------------------------------------- */

static json_t *
latency_json(struct sim *s, enum step st)
{
    double *v = calloc(s->n + 1, sizeof(*v));
    size_t k = 0;
    json_t *o;
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < s->n; i++) {
        if (s->results[i].pass[st])
            v[k++] = s->results[i].ms[st];
    }
    double p50 = sim_percentile(v, k, 50), p99 = sim_percentile(v, k, 99); /* sorts v */
    double max = k ? v[k - 1] : 0.0;
    o = json_pack("{s:I, s:f, s:f, s:f}", "n", (json_int_t)k, "p50", p50, "p99", p99, "max", max);
    free(v);
    return o;
}

static json_t *
step_json(struct sim *s, enum step st)
{
    json_t *outcomes = json_object();
    size_t count = 0;
    if (outcomes == NULL)
        return NULL;
    for (size_t i = 0; i < s->n; i++) {
        const char *code = s->results[i].code[st];
        if (code[0] == '\0')
            continue;
        count++;
        json_int_t prev = json_integer_value(json_object_get(outcomes, code));
        json_object_set_new(outcomes, code, json_integer(prev + 1));
    }
    return json_pack("{s:I, s:o, s:o}", "count", (json_int_t)count, "outcomes", outcomes,
                     "latency_ms", latency_json(s, st));
}

static json_t *
results_json(struct sim *s)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < s->n; i++) {
        struct result *r = &s->results[i];
        json_t *o =
            json_pack("{s:I, s:s, s:s?, s:b, s:I}", "index", (json_int_t)(s->first + i),
                      "device_id", s->ids[s->first + i], "fault", fleet_fault_names[s->faults[i]],
                      "certificate", r->issued, "attempts", (json_int_t)r->attempts);
        if (o == NULL)
            continue;
        for (int st = 0; st < S_COUNT; st++)
            json_object_set_new(o, fleet_step_names[st],
                                r->code[st][0] ? json_string(r->code[st]) : json_null());
        if (r->issued) {
            json_object_set_new(o, "not_before", json_integer(r->not_before));
            json_object_set_new(o, "not_after", json_integer(r->not_after));
            json_object_set_new(o, "renew_at", json_integer(r->renew_at));
        }
        if (r->detail[0] != '\0')
            json_object_set_new(o, "detail", json_string(r->detail));
        if (s->bt.boots > 0)
            json_object_set_new(o, "telemetry", boots_device_json(&s->devs[i]));
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *
faults_json(struct sim *s)
{
    json_t *out = json_object();
    for (int f = 1; out != NULL && f < F_COUNT; f++) {
        json_t *idx = json_array(), *outcomes = json_object();
        if (idx == NULL || outcomes == NULL) {
            json_decref(idx);
            json_decref(outcomes);
            continue;
        }
        for (size_t i = 0; i < s->n; i++) {
            if (s->faults[i] != (int)f)
                continue;
            json_array_append_new(idx, json_integer((json_int_t)(s->first + i)));
            /* a device's outcome: the code of its first failed step, or "pass" */
            const char *code = "pass";
            for (int st = 0; st < S_COUNT; st++) {
                if (s->results[i].code[st][0] != '\0' && !s->results[i].pass[st]) {
                    code = s->results[i].code[st];
                    break;
                }
            }
            json_int_t prev = json_integer_value(json_object_get(outcomes, code));
            json_object_set_new(outcomes, code, json_integer(prev + 1));
        }
        if (json_array_size(idx) == 0) {
            json_decref(idx);
            json_decref(outcomes);
            continue;
        }
        json_object_set_new(out, fleet_fault_names[f],
                            json_pack("{s:o, s:o}", "indexes", idx, "outcomes", outcomes));
    }
    return out;
}

static void
print_text(struct sim *s, json_t *sum)
{
    printf("aegis-sim %s: %zu devices (from %zu), concurrency %ld, %.2f s\n",
           s->whoami_only ? "whoami" : "run", s->n, s->first, s->concurrency,
           json_real_value(json_object_get(sum, "elapsed_s")));
    for (int st = 0; st < S_COUNT; st++) {
        json_t *o = json_object_get(sum, fleet_step_names[st]);
        if (o == NULL || json_integer_value(json_object_get(o, "count")) == 0)
            continue;
        printf("  %-13s %5lld:", fleet_step_names[st],
               (long long)json_integer_value(json_object_get(o, "count")));
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(o, "outcomes"), k, v)
        {
            printf(" %s %lld", k, (long long)json_integer_value(v));
        }
        json_t *lat = json_object_get(o, "latency_ms");
        printf("   latency ms p50 %.1f p99 %.1f max %.1f\n",
               json_real_value(json_object_get(lat, "p50")),
               json_real_value(json_object_get(lat, "p99")),
               json_real_value(json_object_get(lat, "max")));
    }
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(sum, "faults"), k, v)
    {
        printf("  fault %-12s devices %zu:", k, json_array_size(json_object_get(v, "indexes")));
        const char *k2;
        json_t *v2;
        json_object_foreach(json_object_get(v, "outcomes"), k2, v2)
        {
            printf(" %s %lld", k2, (long long)json_integer_value(v2));
        }
        printf("\n");
    }
    if (json_object_get(sum, "telemetry") != NULL)
        boots_print(json_object_get(sum, "telemetry"));
    for (size_t i = 0, shown = 0; i < s->n && shown < 10; i++) {
        if (s->results[i].detail[0] != '\0') {
            printf("  device %zu: %s\n", s->first + i, s->results[i].detail);
            shown++;
        }
    }
}

json_t *
fleet_summary(struct sim *s, double elapsed_s)
{
    json_t *sum = json_pack(
        "{s:s, s:I, s:I, s:I, s:f, s:f}", "mode", s->whoami_only ? "whoami" : "run", "devices",
        (json_int_t)s->n, "from", (json_int_t)s->first, "concurrency", (json_int_t)s->concurrency,
        "elapsed_s", elapsed_s, "devices_per_s", elapsed_s > 0 ? (double)s->n / elapsed_s : 0.0);
    if (sum == NULL)
        return NULL;
    for (int st = 0; st < S_COUNT; st++) {
        if (s->whoami_only && st != S_WHOAMI)
            continue;
        if (!s->renew && (st == S_RENEW || st == S_RENEW_WHOAMI))
            continue;
        json_object_set_new(sum, fleet_step_names[st], step_json(s, (enum step)st));
    }
    json_object_set_new(sum, "faults", faults_json(s));
    return sum;
}

int
fleet_print(struct sim *s, json_t *sum)
{
    if (s->json) {
        json_object_set_new(sum, "results", results_json(s));
        if (json_dumpf(sum, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0)
            return -1;
        printf("\n");
    } else {
        print_text(s, sum);
    }
    fflush(stdout);
    return 0;
}
