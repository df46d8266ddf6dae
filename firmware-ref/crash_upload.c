/* crash_upload: the upload side of the crash queue (crash.h, docs/telemetry.md section 2): the
 * next batch with its dropped count, and applying the service's answer. */
#include "crash.h"
#include "crash_int.h"

#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
in_flight(const adev_crashq *q, int64_t id)
{
    for (size_t i = 0; i < q->n_inflight; i++) {
        if (q->inflight[i] == id)
            return 1;
    }
    return 0;
}

/* --- upload ---------------------------------------------------------------------------------- */

void
adev_crash_abandon(adev_crashq *q)
{
    if (q == NULL)
        return;
    q->n_inflight = 0;
    q->sent_dropped = 0;
}

/* The wire form of a stored report: a crash's local "repeats" becomes text in its message. */
static json_t *
wire_report(json_t *stored)
{
    json_t *r = json_deep_copy(stored);
    int64_t repeats = crash_get_int(stored, "repeats");
    char note[64], msg[PROTO_TEL_MESSAGE_MAX + 1];

    if (r == NULL || repeats <= 0)
        return r;
    json_object_del(r, "repeats");
    int n = snprintf(note, sizeof(note), "[crash loop: repeated %" PRId64 " more times]", repeats);
    const char *old = json_string_value(json_object_get(r, "message"));
    size_t room = PROTO_TEL_MESSAGE_MAX - (size_t)n - 1; /* old text, a space, the note */
    size_t k = old != NULL ? crash_clean_utf8(old, msg, room) : 0;
    snprintf(msg + k, sizeof(msg) - k, "%s%s", k > 0 ? " " : "", note);
    if (json_object_set_new(r, "message", json_string(msg)) != 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}

/* The dropped count of the next batch, and how many of the oldest reports it may hold (*limit,
 * 0: any). With a count in flight, the batch is the one that carried it (its first report_id to
 * "inflight_last"); a stale marker (its first report gone, which an answer would have cleared in
 * the same write) is dropped. */
static int64_t
batch_dropped(const adev_crashq *q, json_t *reports, size_t *limit, int *marker)
{
    *limit = 0;
    *marker = 0;
    if (json_object_get(q->doc, "inflight_dropped") == NULL)
        return crash_get_int(q->doc, "dropped");
    if (crash_get_int(json_array_get(reports, 0), "report_id") !=
        crash_get_int(q->doc, "inflight_first"))
        return crash_get_int(q->doc, "dropped");
    int64_t last = crash_get_int(q->doc, "inflight_last");
    size_t k = 0;
    while (k < json_array_size(reports) &&
           crash_get_int(json_array_get(reports, k), "report_id") <= last)
        k++;
    *limit = k;
    *marker = 1;
    return crash_get_int(q->doc, "inflight_dropped");
}

/* The body {"version", "dropped", "reports": the first count of reports} as root (caller frees)
 * and its text (malloc'd), with count cut down until the body fits PROTO_TEL_BODY_MAX (at least
 * one report goes). NULL on failure. */
static char *
batch_body(json_t *reports, int64_t dropped, size_t *count, json_t **rootp)
{
    char *body = NULL;
    json_t *root = NULL;

    assert(*count > 0);
    for (;;) {
        json_decref(root);
        json_t *arr = json_array();
        root = json_pack("{s:i, s:I, s:o}", "version", PROTO_VERSION, "dropped",
                         (json_int_t)dropped, "reports", arr);
        if (root == NULL)
            goto fail;
        for (size_t i = 0; i < *count; i++) {
            if (json_array_append_new(arr, wire_report(json_array_get(reports, i))) != 0)
                goto fail;
        }
        free(body);
        body = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (body == NULL)
            goto fail;
        if (strlen(body) <= PROTO_TEL_BODY_MAX || *count == 1)
            break;
        (*count)--;
    }
    *rootp = root;
    return body;
fail:
    free(body);
    json_decref(root);
    return NULL;
}

/* Writes what must be stored before the request goes out: the highest report_id ever sent
 * ("sent_max"), and a dropped count in flight with exactly the reports first..last. 0 or -1. */
static int
batch_mark(adev_crashq *q, int64_t dropped, int marker, int64_t first, int64_t last)
{
    int64_t sent_max = crash_get_int(q->doc, "sent_max");
    int new_marker = dropped > 0 && (!marker || last < crash_get_int(q->doc, "inflight_last"));
    int stale = !marker && json_object_get(q->doc, "inflight_dropped") != NULL;
    if (!new_marker && !stale && last <= sent_max)
        return 0;
    json_t *next = crash_copy_doc(q);
    if (next == NULL || (last > sent_max && crash_set_int(next, "sent_max", last) != 0))
        goto fail;
    if (stale) {
        json_object_del(next, "inflight_dropped");
        json_object_del(next, "inflight_first");
        json_object_del(next, "inflight_last");
    }
    if (new_marker && ((!marker && crash_set_int(next, "dropped",
                                                 crash_get_int(next, "dropped") - dropped) != 0) ||
                       crash_set_int(next, "inflight_dropped", dropped) != 0 ||
                       crash_set_int(next, "inflight_first", first) != 0 ||
                       crash_set_int(next, "inflight_last", last) != 0))
        goto fail;
    return crash_commit(q, next);
fail:
    json_decref(next);
    return -1;
}

char *
adev_crash_batch(adev_crashq *q, size_t max, size_t *n)
{
    char *body = NULL;
    json_t *root = NULL;
    size_t limit = 0;
    int marker = 0;

    if (n != NULL)
        *n = 1;
    if (q == NULL || n == NULL || max == 0)
        goto out;
    adev_crash_abandon(q);
    json_t *reports = json_object_get(q->doc, "reports");
    size_t count = json_array_size(reports);
    if (count == 0) {
        *n = 0;
        goto out;
    }
    int64_t dropped = batch_dropped(q, reports, &limit, &marker);
    if (limit > 0) /* the batch a dropped count went with */
        count = limit;
    count = count < max ? count : max;
    count = count < PROTO_TEL_REPORTS_MAX ? count : PROTO_TEL_REPORTS_MAX;
    body = batch_body(reports, dropped, &count, &root);
    if (body == NULL)
        goto out;
    int64_t first = crash_get_int(json_array_get(reports, 0), "report_id");
    int64_t last = crash_get_int(json_array_get(reports, count - 1), "report_id");
    if (!marker && dropped > 0 && last <= crash_get_int(q->doc, "sent_max")) {
        /* every report of the batch may have been stored by an earlier request whose answer was
         * lost: the service would take the batch for a retry and not add the count. It waits for
         * a batch with a report never sent. */
        dropped = 0;
        free(body);
        body = NULL;
        if (crash_set_int(root, "dropped", 0) != 0 ||
            (body = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
            goto out;
    }
    if (batch_mark(q, dropped, marker, first, last) != 0)
        goto out;
    reports = json_object_get(q->doc, "reports"); /* a commit replaced the document */
    assert(count <= PROTO_TEL_REPORTS_MAX && count <= json_array_size(reports));
    for (size_t i = 0; i < count; i++)
        q->inflight[i] = crash_get_int(json_array_get(reports, i), "report_id");
    q->n_inflight = count;
    q->sent_dropped = dropped;
    *n = count;
out:
    if (n != NULL && *n != 0 && q != NULL && q->n_inflight == 0) {
        free(body); /* failed */
        body = NULL;
        adev_crash_abandon(q);
    }
    json_decref(root);
    return body;
}

/* Index of report id in reports, or -1. */
static long
find_report(json_t *reports, int64_t id)
{
    for (size_t i = 0; i < json_array_size(reports); i++) {
        if (crash_get_int(json_array_get(reports, i), "report_id") == id)
            return (long)i;
    }
    return -1;
}

int
adev_crash_ack(adev_crashq *q, const char *body, size_t len, struct adev_crash_ack *out)
{
    int rc = -1;
    json_t *root = NULL, *next = NULL, *e;
    struct adev_crash_ack a;
    size_t i;

    memset(&a, 0, sizeof(a));
    if (q == NULL || body == NULL || q->n_inflight == 0)
        goto out;
    root = json_loadb(body, len, 0, NULL);
    json_t *results = json_object_get(root, "results");
    next = crash_copy_doc(q);
    if (!json_is_array(results) || next == NULL)
        goto out;
    json_t *reports = json_object_get(next, "reports");
    json_array_foreach(results, i, e)
    {
        json_t *jid = json_object_get(e, "report_id");
        const char *status = json_string_value(json_object_get(e, "status"));
        if (!json_is_integer(jid) || status == NULL || !in_flight(q, json_integer_value(jid)))
            continue;
        int stored = strcmp(status, "stored") == 0, dup = strcmp(status, "duplicate") == 0;
        int rejected = strcmp(status, "rejected") == 0;
        long at = find_report(reports, json_integer_value(jid));
        if ((!stored && !dup && !rejected) || at < 0)
            continue;
        int crash = crash_is_type(json_array_get(reports, (size_t)at), PROTO_TEL_CRASH);
        a.stored += (unsigned)stored;
        a.duplicates += (unsigned)dup;
        a.rejected += (unsigned)rejected;
        a.crashes += (unsigned)(crash && !rejected);
        a.crashes_rejected += (unsigned)(crash && rejected);
        if (json_array_remove(reports, (size_t)at) != 0)
            goto out;
    }
    if (a.stored + a.duplicates + a.rejected == 0)
        goto out;
    if (a.rejected > 0)
        crash_bump(next, "reports_rejected", a.rejected);
    crash_bump(next, "upload_batches", 1);
    if (q->sent_dropped > 0) { /* delivered, by this request or an earlier one of the batch */
        json_object_del(next, "inflight_dropped");
        json_object_del(next, "inflight_first");
        json_object_del(next, "inflight_last");
    }
    a.remaining = json_array_size(reports);
    rc = crash_commit(q, next) == 0 ? 0 : -2;
    next = NULL;
out:
    if (q != NULL)
        adev_crash_abandon(q);
    if (out != NULL)
        *out = a;
    json_decref(root);
    json_decref(next);
    return rc;
}
