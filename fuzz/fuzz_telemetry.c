/* fuzz_telemetry: bodies of POST /v1/device/telemetry through the batch parser
 * (server/device/telemetry_parse.c), as the HTTP layer hands them over (parsed with
 * JSON_REJECT_DUPLICATES, a JSON object, an authenticated device). Beyond the sanitizers, it checks
 * what the writer relies on: a batch holds 1..PROTO_TEL_REPORTS_MAX items, an accepted item carries
 * a report id and the device's tenant, a rejected one a message, and the answer has one result per
 * item. */
#include "telemetry_parse.h"
#include "util.h"

#include <jansson.h>
#include <string.h>

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_batch(const struct ingest_batch *b)
{
    size_t valid = 0;
    if (b->n < 1 || b->n > PROTO_TEL_REPORTS_MAX)
        abort();
    for (size_t i = 0; i < b->n; i++) {
        const struct ingest_item *it = &b->items[i];
        if (it->rejected) {
            char copy[sizeof(it->error)];
            memcpy(copy, it->error, sizeof(copy));
            if (it->error[0] == '\0' || util_utf8_repair(copy) != 0) /* it goes into JSON */
                abort();
            continue;
        }
        /* a crash has a running time with what ran, or neither */
        if (it->rep.type == STORE_REPORT_CRASH && (it->rep.period_s == 0) != (it->rep.nimages == 0))
            abort();
        valid++;
        if (it->report_id < 1 || it->rep.report_id != it->report_id || it->rep.tenant_id != 7 ||
            it->rep.device_id == NULL || it->rep.boot_id == NULL)
            abort();
    }
    if (valid != b->nvalid)
        abort();
    json_t *answer = ingest_batch_answer(b, NULL, NULL, NULL);
    if (answer == NULL || json_array_size(json_object_get(answer, "results")) != b->n)
        abort();
    json_decref(answer);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct devauth_identity dev = {.tenant_id = 7, .group_id = 2, .product_id = 3};
    json_error_t jerr;
    struct ingest_batch *b = NULL;
    char err[192] = "";

    memset(dev.device_id, 'a', 64);
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL || !json_is_object(body))
        goto out;
    int rc = telemetry_parse_batch(body, &dev, &b, err, sizeof(err));
    if (rc == TELEMETRY_PARSE_OK) {
        check_batch(b);
        ingest_batch_free(b);
    } else if (b != NULL || err[0] == '\0') {
        abort(); /* a refused batch has no batch and a reason */
    }
out:
    json_decref(body);
    return 0;
}
