#include "sg_serve.h"

#include "errbuf.h"
#include "keyring.h"
#include "pki.h"
#include "sg_ilog.h"
#include "sg_policy.h"
#include "sg_seccomp.h"
#include "sg_wire.h"
#include "util.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Key names are [a-z0-9/-]{1,64} (keyring.h); fields the policy judges are read up to a frame's
 * size, so that it, not the decoder, says which rule a request broke. */
#define KEY_NAME_MAX 64
#define POLICY_STR_MAX SG_WIRE_MAX

struct sg_serve {
    keyring *kr;
    sg_policy *pol;
    sg_ilog *ilog;
    char *tls_key, *tls_cert; /* owned copies of the paths TLS_RELOAD reads again */
};

/* What a handler answers besides its reply fields. */
struct answer {
    uint16_t status;
    int64_t retry_after_s;
    int needs_sync;
    char msg[512];
};

sg_serve *
sg_serve_new(const struct signer_opts *o, char *err, size_t errlen)
{
    struct sg_policy_opts po = {o->max_lifetime_s, o->issue_rate, o->issue_burst};
    sg_serve *sv = calloc(1, sizeof(*sv));
    if (sv == NULL) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    if ((sv->tls_key = strdup(o->tls_key)) == NULL ||
        (o->tls_cert != NULL && (sv->tls_cert = strdup(o->tls_cert)) == NULL)) {
        errbuf_set(err, errlen, "out of memory");
        goto fail;
    }
    if ((sv->kr = keyring_new(o->pki_dir, err, errlen)) == NULL ||
        keyring_tls_load(sv->kr, o->tls_key, err, errlen) != 0 ||
        (sv->ilog = sg_ilog_open(o->issuance_log, err, errlen)) == NULL)
        goto fail;
    if ((sv->pol = sg_policy_new(&po)) == NULL) {
        errbuf_set(err, errlen, "signer policy: lifetime, rate or burst out of range");
        goto fail;
    }
    return sv;
fail:
    sg_serve_free(sv);
    return NULL;
}

void
sg_serve_free(sg_serve *sv)
{
    if (sv == NULL)
        return;
    keyring_free(sv->kr);
    sg_policy_free(sv->pol);
    sg_ilog_close(sv->ilog);
    free(sv->tls_key);
    free(sv->tls_cert);
    free(sv);
}

int
sg_serve_sync_begin(sg_serve *sv)
{
    return sg_ilog_sync_begin(sv->ilog);
}

int
sg_serve_sync_end(sg_serve *sv, int synced, char *err, size_t errlen)
{
    return sg_ilog_sync_end(sv->ilog, synced, err, errlen);
}

int
sg_serve_log_fd(const sg_serve *sv)
{
    return sg_ilog_fd(sv->ilog);
}

/* The status of a SIGNER_* code. */
static uint16_t
status_of(int rc)
{
    return rc == 0                ? SG_ST_OK
           : rc == SIGNER_REFUSED ? SG_ST_REFUSED
           : rc == SIGNER_BUSY    ? SG_ST_BUSY
                                  : SG_ST_ERR;
}

static int
decoded(struct sg_reader *r, struct answer *a)
{
    if (sg_wire_done(r, a->msg, sizeof(a->msg)) == 0)
        return 0;
    a->status = SG_ST_ERR;
    return -1;
}

static void
op_ping(sg_serve *sv, struct sg_reader *r, struct sg_writer *w, struct answer *a)
{
    (void)sv;
    if (decoded(r, a) == 0)
        sg_wire_put_int(w, (int64_t)getpid());
}

/* The monotonic clock in seconds, for the issuance buckets. */
static double
mono_s(void)
{
    return (double)util_mono_ns() / 1e9;
}

/* Appends what was issued to the issuance log; the reply then waits for the batch's sync. */
static int
log_issued(sg_serve *sv, const struct sg_ilog_rec *rec, struct answer *a)
{
    if (sg_ilog_append(sv->ilog, rec, a->msg, sizeof(a->msg)) != 0) {
        a->status = SG_ST_ERR;
        return -1;
    }
    a->needs_sync = 1;
    return 0;
}

static void
op_issue(sg_serve *sv, struct sg_reader *r, struct sg_writer *w, struct answer *a)
{
    struct signer_leaf_req q;
    struct pki_leaf_profile prof;
    struct keyring_issued iss;
    char uri[160], *pem = NULL;
    int rc;
    sg_wire_get_int(r, &q.tenant_id);
    sg_wire_get_str(r, &q.tenant_name, POLICY_STR_MAX);
    sg_wire_get_str(r, &q.device_id, POLICY_STR_MAX);
    sg_wire_get_str(r, &q.ca_key_name, POLICY_STR_MAX);
    sg_wire_get_str(r, &q.csr_pem, POLICY_STR_MAX);
    sg_wire_get_int(r, &q.lifetime_s);
    if (decoded(r, a) != 0)
        return;
    q.csr_len = strlen(q.csr_pem);
    int64_t now = util_now();
    if ((rc = sg_policy_leaf(sv->pol, &q, now, &prof, uri, a->msg, sizeof(a->msg))) != 0 ||
        (rc = sg_policy_take(sv->pol, q.tenant_id, mono_s(), &a->retry_after_s)) != 0) {
        a->status = status_of(rc);
        if (rc == SIGNER_BUSY)
            snprintf(a->msg, sizeof(a->msg), "the tenant's certificate issuance rate is spent");
        return;
    }
    if (keyring_issue(sv->kr, q.ca_key_name, q.csr_pem, q.csr_len, &prof, &pem, &iss, a->msg,
                      sizeof(a->msg)) != 0) {
        a->status = SG_ST_ERR;
        return;
    }
    struct sg_ilog_rec rec = {
        now, "device_cert", q.tenant_id, q.device_id, iss.serial_hex, q.ca_key_name, iss.not_after};
    if (log_issued(sv, &rec, a) == 0)
        sg_wire_put_str(w, pem);
    free(pem);
}

static void
op_ed_public(sg_serve *sv, struct sg_reader *r, struct sg_writer *w, struct answer *a)
{
    const char *name;
    int create;
    ota_key k;
    sg_wire_get_str(r, &name, KEY_NAME_MAX);
    sg_wire_get_flag(r, &create);
    if (decoded(r, a) != 0)
        return;
    if (keyring_ed25519_public(sv->kr, name, create, &k, a->msg, sizeof(a->msg)) != 0) {
        a->status = SG_ST_ERR;
        return;
    }
    sg_wire_put(w, k.pk, sizeof(k.pk));
    sg_wire_put_str(w, k.keyid);
}

static void
op_ed_sign(sg_serve *sv, struct sg_reader *r, struct sg_writer *w, struct answer *a)
{
    const char *name;
    const unsigned char *msg;
    size_t len;
    char sig[OTA_SIG_HEX_LEN], keyid[OTA_KEYID_HEX_LEN];
    int rc;
    sg_wire_get_str(r, &name, KEY_NAME_MAX);
    sg_wire_get(r, &msg, &len);
    if (decoded(r, a) != 0)
        return;
    if ((rc = sg_policy_tuf(name, msg, len, util_now(), a->msg, sizeof(a->msg))) != 0) {
        a->status = status_of(rc);
        return;
    }
    if (keyring_ed25519_sign(sv->kr, name, msg, len, sig, keyid, a->msg, sizeof(a->msg)) != 0) {
        a->status = SG_ST_ERR;
        return;
    }
    sg_wire_put_str(w, sig);
    sg_wire_put_str(w, keyid);
}

static void
op_tls_sign(sg_serve *sv, struct sg_reader *r, struct sg_writer *w, struct answer *a)
{
    const unsigned char *data;
    size_t len, siglen = 0;
    unsigned char sig[SIGNER_SIG_MAX];
    int rc;
    sg_wire_get(r, &data, &len);
    if (decoded(r, a) != 0)
        return;
    if ((rc = sg_policy_tls(data, len, a->msg, sizeof(a->msg))) != 0) {
        a->status = status_of(rc);
        return;
    }
    if (keyring_tls_sign(sv->kr, data, len, sig, &siglen, a->msg, sizeof(a->msg)) != 0) {
        a->status = SG_ST_ERR;
        return;
    }
    sg_wire_put(w, sig, siglen);
}

static void
op_tls_sign_digest(sg_serve *sv, struct sg_reader *r, struct sg_writer *w, struct answer *a)
{
    const unsigned char *digest;
    size_t len, siglen = 0;
    unsigned char sig[SIGNER_SIG_MAX];
    sg_wire_get(r, &digest, &len);
    if (decoded(r, a) != 0)
        return;
    if (len != SIGNER_TLS_DIGEST_LEN) {
        a->status = SG_ST_REFUSED;
        snprintf(a->msg, sizeof(a->msg), "signer policy: a TLS digest is %d bytes",
                 SIGNER_TLS_DIGEST_LEN);
        return;
    }
    if (keyring_tls_sign_digest(sv->kr, digest, sig, &siglen, a->msg, sizeof(a->msg)) != 0) {
        a->status = SG_ST_ERR;
        return;
    }
    sg_wire_put(w, sig, siglen);
}

static void
op_ca_rollover(sg_serve *sv, struct sg_reader *r, struct sg_writer *w, struct answer *a)
{
    int64_t tenant_id, newest = 0, now = util_now();
    const char *name;
    char key_name[80], issuer[64], *pem = NULL;
    struct keyring_issued iss;
    int rc;
    sg_wire_get_int(r, &tenant_id);
    sg_wire_get_str(r, &name, SG_TENANT_NAME_MAX);
    if (decoded(r, a) != 0)
        return;
    if (tenant_id < 1 || !sg_policy_tenant_name_ok(name)) {
        a->status = SG_ST_REFUSED;
        snprintf(a->msg, sizeof(a->msg),
                 "signer policy: tenant id must be at least 1 and the name printable");
        return;
    }
    if (keyring_ca_newest(sv->kr, tenant_id, &newest, a->msg, sizeof(a->msg)) != 0) {
        a->status = SG_ST_ERR;
        return;
    }
    if ((rc = sg_policy_ca_rollover(newest, now, a->msg, sizeof(a->msg))) != 0) {
        a->status = status_of(rc);
        return;
    }
    if (keyring_ca_create(sv->kr, tenant_id, name, SG_CA_LIFETIME_S, key_name, &pem, &iss, a->msg,
                          sizeof(a->msg)) != 0) {
        a->status = SG_ST_ERR;
        return;
    }
    snprintf(issuer, sizeof(issuer), "tenants/%lld/root", (long long)tenant_id);
    struct sg_ilog_rec rec = {now,    "ca",         tenant_id, key_name, iss.serial_hex,
                              issuer, iss.not_after};
    if (log_issued(sv, &rec, a) == 0) {
        sg_wire_put_str(w, key_name);
        sg_wire_put_str(w, pem);
    }
    free(pem);
}

typedef void (*op_fn)(sg_serve *, struct sg_reader *, struct sg_writer *, struct answer *);
static void op_tls_reload(sg_serve *sv, struct sg_reader *r, struct sg_writer *w, struct answer *a);

static op_fn
handler_of(uint16_t op)
{
    switch (op) {
    case SG_OP_PING:
        return op_ping;
    case SG_OP_ISSUE_DEVICE_CERT:
        return op_issue;
    case SG_OP_ED25519_PUBLIC:
        return op_ed_public;
    case SG_OP_ED25519_SIGN:
        return op_ed_sign;
    case SG_OP_TLS_SIGN:
        return op_tls_sign;
    case SG_OP_CA_ROLLOVER:
        return op_ca_rollover;
    case SG_OP_TLS_SIGN_DIGEST:
        return op_tls_sign_digest;
    case SG_OP_TLS_RELOAD:
        return op_tls_reload;
    default:
        return NULL;
    }
}

/* A reply without the op's fields: an error of some kind, its message (and BUSY's wait). */
static size_t
error_reply(unsigned char *tx, uint32_t id, const struct answer *a)
{
    struct sg_writer w;
    sg_wire_begin(&w, tx, SG_WIRE_MAX, a->status, id);
    if (a->status == SG_ST_BUSY)
        sg_wire_put_int(&w, a->retry_after_s);
    sg_wire_put_str(&w, a->msg);
    long len = sg_wire_end(&w);
    assert(len > 0); /* a message of at most 512 bytes always fits */
    return (size_t)len;
}

size_t
sg_serve_one(sg_serve *sv, unsigned char *rx, size_t n, unsigned char *tx, int *needs_sync)
{
    struct sg_hdr h;
    struct sg_reader r;
    struct sg_writer w;
    struct answer a = {SG_ST_OK, 0, 0, ""};
    op_fn fn = NULL;
    *needs_sync = 0;
    if (sg_wire_parse(rx, n, &h, &r, a.msg, sizeof(a.msg)) != 0) {
        /* The id where the header holds one, so the caller can tell its answer. */
        a.status = SG_ST_ERR;
        return error_reply(tx, sg_wire_peek_id(rx, n), &a);
    }
    if (h.version != SG_WIRE_VERSION) {
        a.status = SG_ST_VERSION;
        snprintf(a.msg, sizeof(a.msg), "version %u: this signer speaks %d", h.version,
                 SG_WIRE_VERSION);
        return error_reply(tx, h.id, &a);
    }
    if ((fn = handler_of(h.code)) == NULL) {
        a.status = SG_ST_ERR;
        snprintf(a.msg, sizeof(a.msg), "code %u is not a request", h.code);
        return error_reply(tx, h.id, &a);
    }
    sg_wire_begin(&w, tx, SG_WIRE_MAX, SG_ST_OK, h.id);
    fn(sv, &r, &w, &a);
    long len = sg_wire_end(&w);
    if (a.status == SG_ST_OK && len < 0) {
        a.status = SG_ST_ERR;
        snprintf(a.msg, sizeof(a.msg), "the reply does not fit in a frame");
    }
    if (a.status != SG_ST_OK)
        return error_reply(tx, h.id, &a);
    *needs_sync = a.needs_sync;
    return (size_t)len;
}

size_t
sg_serve_fail(unsigned char *tx, const char *msg)
{
    struct answer a = {SG_ST_ERR, 0, 0, ""};
    snprintf(a.msg, sizeof(a.msg), "%s", msg);
    return error_reply(tx, sg_wire_peek_id(tx, SG_WIRE_HDR), &a);
}

size_t
sg_serve_start_failure(unsigned char *tx, const char *msg)
{
    struct answer a = {SG_ST_ERR, 0, 0, ""};
    snprintf(a.msg, sizeof(a.msg), "%s", msg);
    return error_reply(tx, 0, &a);
}

/* The largest certificate chain file TLS_RELOAD reads (aegisd reads no more at start). */
#define TLS_CHAIN_MAX (64 * 1024)

static void
op_tls_reload(sg_serve *sv, struct sg_reader *r, struct sg_writer *w, struct answer *a)
{
    char *chain = NULL;
    int commit = 0;
    sg_wire_get_flag(r, &commit);
    if (decoded(r, a) != 0)
        return;
    a->status = SG_ST_ERR;
    if (sv->tls_cert == NULL) {
        snprintf(a->msg, sizeof(a->msg), "signer: started without the TLS certificate's path");
        return;
    }
    if ((chain = util_read_file(sv->tls_cert, TLS_CHAIN_MAX, NULL)) == NULL) {
        snprintf(a->msg, sizeof(a->msg),
                 "signer: cannot read the TLS certificate %s (at most %d "
                 "bytes)",
                 sv->tls_cert, TLS_CHAIN_MAX);
        return;
    }
    if (keyring_tls_reload(sv->kr, sv->tls_key, chain, commit, a->msg, sizeof(a->msg)) == 0) {
        a->status = SG_ST_OK;
        sg_wire_put_str(w, chain);
    }
    free(chain);
}
