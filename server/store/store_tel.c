/* store_tel: the telemetry store's rules and helpers shared by its files (store_tel.h): addresses
 * and bucket signatures, the checks of a report (the schema's CHECK constraints say the same; the
 * field rules are proto's), and stepping a write. */
#include "store_tel.h"

#include "proto_event.h"
#include "util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* --- Addresses and signatures --- */

/* The text hashed into a signature into out (len bytes): its length, or -1 when too long. */
int
store__tel_sig_text(const char *component, const char *reason, const char *pc,
                    const char (*ra)[STORE_TEL_ADDR_LEN], size_t nra, char *out, size_t len)
{
    int n = snprintf(out, len, "%s|%s|%s|%s|%s|%s", component, reason, pc, nra > 0 ? ra[0] : "",
                     nra > 1 ? ra[1] : "", nra > 2 ? ra[2] : "");
    return n < 0 || (size_t)n >= len ? -1 : n;
}

/* The signature of a text from store__tel_sig_text. */
void
store__tel_sig_digest(const char *text, size_t n, char out[STORE_TEL_SIG_HEX + 1])
{
    uint8_t md[PROTO_HASH_LEN];
    if (proto_sha256(text, n, md) != 0) {
        /* only with no memory in OpenSSL: never a valid signature */
        memset(out, 'x', STORE_TEL_SIG_HEX);
        out[STORE_TEL_SIG_HEX] = '\0';
        return;
    }
    proto_hex(md, sizeof(md), out);
}

void
store_telemetry_signature(const char *component, const char *reason, const char *pc,
                          const char (*ra)[STORE_TEL_ADDR_LEN], size_t nra, char out[65])
{
    /* component (64) + reason (32) + 4 addresses (18 each) + 5 separators */
    char text[PROTO_COMPONENT_MAX + PROTO_TEL_REASON_MAX + 4 * STORE_TEL_ADDR_LEN + 8];
    int n = store__tel_sig_text(component, reason, pc, ra, nra, text, sizeof(text));
    if (n < 0) {
        /* only with arguments beyond their bounds: never a valid signature */
        memset(out, 'x', STORE_TEL_SIG_HEX);
        out[STORE_TEL_SIG_HEX] = '\0';
        return;
    }
    store__tel_sig_digest(text, (size_t)n, out);
}

/* --- Argument checks (the schema's CHECK constraints say the same; the rules are proto's) --- */

/* s (NUL-terminated, may be NULL) follows rule. */
int
store__tel_text_ok(const char *s, int (*rule)(const char *, size_t))
{
    return s != NULL && rule(s, strlen(s));
}

static int
hex32_ok(const char *s, size_t len)
{
    return proto_hex_ok(s, len, PROTO_TEL_BOOT_ID_HEX / 2);
}

static int
name_ok(const char *s, size_t len)
{
    return proto_chars_ok(s, len, 1, PROTO_TEL_REASON_MAX, PROTO_TEL_NAME_CHARS);
}

static int
addr_ok(const char *a)
{
    char norm[STORE_TEL_ADDR_LEN];
    return a != NULL && proto_tel_addr_norm(a, strlen(a), norm) == 0 && strcmp(a, norm) == 0;
}

/* period_s and the images that ran during it (a heartbeat's, or a crash's since its boot's last
 * heartbeat). */
static int
period_ok(const struct store_report *r)
{
    if (r->period_s < 1 || r->period_s > PROTO_TEL_PERIOD_MAX || r->nimages < 1 ||
        r->nimages > PROTO_TEL_IMAGES_MAX || r->images == NULL)
        return 0;
    for (size_t i = 0; i < r->nimages; i++)
        if (!store__tel_text_ok(r->image_component[i], proto_component_ok) ||
            !store__tel_text_ok(r->image_versions[i], proto_version_ok))
            return 0;
    return 1;
}

int
store__tel_report_ok(const struct store_report *r)
{
    if (r == NULL || r->tenant_id < 1 || !store__device_id_ok(r->device_id) || r->report_id < 1 ||
        r->report_id > PROTO_TEL_REPORT_ID_MAX || !store__tel_text_ok(r->boot_id, hex32_ok) ||
        r->uptime_s < 0 || r->uptime_s > PROTO_TEL_U32_MAX || r->group_id < 0 || r->product_id < 0)
        return 0;
    switch (r->type) {
    case STORE_REPORT_CRASH:
        if (!store__tel_text_ok(r->component, proto_component_ok) ||
            !store__tel_text_ok(r->image_version, proto_version_ok) ||
            !store__tel_text_ok(r->reason, name_ok) || !addr_ok(r->pc) || !addr_ok(r->lr) ||
            r->nra > PROTO_TEL_FRAMES_MAX || r->fault_registers == NULL || r->free_memory < 0 ||
            r->free_memory > PROTO_TEL_U32_MAX ||
            (r->message != NULL && r->message_len > PROTO_TEL_MESSAGE_MAX))
            return 0;
        for (size_t i = 0; i < r->nra; i++)
            if (!addr_ok(r->ra[i]))
                return 0;
        /* a period with what ran during it, or neither */
        return r->period_s == 0 ? r->nimages == 0 && r->images == NULL : period_ok(r);
    case STORE_REPORT_HEARTBEAT:
        return r->counters != NULL && r->free_memory >= 0 && r->free_memory <= PROTO_TEL_U32_MAX &&
               period_ok(r);
    case STORE_REPORT_REBOOT:
        return store__tel_text_ok(r->reason, name_ok) &&
               store__tel_text_ok(r->previous_boot_id, hex32_ok);
    }
    return 0;
}

/* --- Writes --- */

/* Steps a write statement whose bindings are set, resets it. */
int
store__tel_run_write(store *s, struct conn *c, sqlite3_stmt *st, int bind_rc, const char *what)
{
    int rc = store__bound(s, c, bind_rc);
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, what);
    sqlite3_reset(st);
    return rc;
}

int
store__tel_bind_static(sqlite3_stmt *st, int i, const char *v)
{
    return v != NULL ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}
