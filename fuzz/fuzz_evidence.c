/* fuzz_evidence: bodies of POST /v1/device/attest through the evidence parser
 * (server/device/attest.c, docs/protocol.md 3.2), and an accepted one through the event encoding
 * and composite fold. Beyond the sanitizers, it checks the parser's promises: 3..8 events in stage
 * order, lengths within their buffers, the CSR pointing into the body. */
#include "attest.h"
#include "proto_event.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_evidence(const json_t *body, const struct attest_evidence *ev)
{
    uint8_t enc[PROTO_EVENT_ENC_MAX], composite[PROTO_HASH_LEN];
    size_t n = 0;
    const char *csr = json_string_value(json_object_get(body, "csr"));
    if (ev->nevents < PROTO_EVENTS_MIN || ev->nevents > PROTO_EVENTS_MAX ||
        ev->csr_der_len > ATTEST_CSR_DER_MAX || ev->sig_len > ATTEST_SIG_MAX || csr == NULL ||
        ev->csr_pem != csr)
        abort();
    if (proto_event_log_check(ev->events, ev->nevents) != 0)
        abort();
    for (size_t i = 0; i < ev->nevents; i++) {
        const struct proto_event *e = &ev->events[i];
        if (e->stage != proto_event_stage_at(i))
            abort();
        if (!proto_component_ok(e->component, strlen(e->component)) ||
            !proto_version_ok(e->version, strlen(e->version)) ||
            proto_event_encode(e, enc, &n) != 0 || n > PROTO_EVENT_ENC_MAX)
            abort();
    }
    if (proto_composite(ev->events, ev->nevents, composite) != 0)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    char err[256];
    static struct attest_evidence ev; /* large: not on the stack */
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (body != NULL && json_is_object(body)) {
        memset(&ev, 0, sizeof(ev));
        err[0] = '\0';
        if (attest_parse(body, &ev, err, sizeof(err)) == 0)
            check_evidence(body, &ev);
        else if (err[0] == '\0')
            abort(); /* every refusal says why */
    }
    json_decref(body);
    return 0;
}
