#include "sg_serve.h"

#include "errbuf.h"
#include "keyring.h"
#include "pki.h"
#include "sg_policy.h"
#include "sg_wire.h"
#include "util.h"

#include <openssl/evp.h>

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Key names are [a-z0-9/-]{1,64} (keyring.h). */
#define KEY_NAME_MAX 64
#define DEVICE_ID_MAX 64

struct sg_serve {
    keyring *kr;
    EVP_PKEY *tls; /* transitional: until keyring_tls_load lands */
    char pki_dir[PATH_MAX];
    int64_t max_lifetime_s;
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
    sg_serve *sv = calloc(1, sizeof(*sv));
    if (sv == NULL) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(sv->pki_dir, sizeof(sv->pki_dir), "%s", o->pki_dir);
    sv->max_lifetime_s = o->max_lifetime_s;
    if ((sv->kr = keyring_new(o->pki_dir, err, errlen)) == NULL ||
        pki_load_key(o->tls_key, &sv->tls, err, errlen) != 0) {
        sg_serve_free(sv);
        return NULL;
    }
    return sv;
}

void
sg_serve_free(sg_serve *sv)
{
    if (sv == NULL)
        return;
    keyring_free(sv->kr);
    EVP_PKEY_free(sv->tls);
    free(sv);
}

int
sg_serve_sync(sg_serve *sv, char *err, size_t errlen)
{
    (void)sv, (void)err, (void)errlen;
    return 0;
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

static void
op_issue(sg_serve *sv, struct sg_reader *r, struct sg_writer *w, struct answer *a)
{
    struct signer_leaf_req q;
    char uri[160], path[PATH_MAX + 80], *pem = NULL, *ca = NULL;
    sg_wire_get_int(r, &q.tenant_id);
    sg_wire_get_str(r, &q.tenant_name, SG_TENANT_NAME_MAX);
    sg_wire_get_str(r, &q.device_id, DEVICE_ID_MAX);
    sg_wire_get_str(r, &q.ca_key_name, KEY_NAME_MAX);
    sg_wire_get_str(r, &q.csr_pem, SG_CSR_MAX);
    sg_wire_get_int(r, &q.lifetime_s);
    if (decoded(r, a) != 0)
        return;
    q.csr_len = strlen(q.csr_pem);
    if (q.lifetime_s <= 0 || q.lifetime_s > sv->max_lifetime_s) {
        a->status = SG_ST_REFUSED;
        snprintf(a->msg, sizeof(a->msg), "lifetime_s: not within 1..%lld",
                 (long long)sv->max_lifetime_s);
        return;
    }
    snprintf(uri, sizeof(uri), "urn:aegis:tenant:%lld:device:%s", (long long)q.tenant_id,
             q.device_id);
    struct pki_leaf_profile p = {q.device_id, q.tenant_name, uri,       NULL, NULL, 1,
                                 1,           q.lifetime_s,  util_now()};
    snprintf(path, sizeof(path), "%s/%s.crt", sv->pki_dir, q.ca_key_name);
    if ((ca = util_read_file(path, 64 * 1024, NULL)) == NULL) {
        a->status = SG_ST_ERR;
        snprintf(a->msg, sizeof(a->msg), "no CA certificate %s", q.ca_key_name);
        return;
    }
    if (keyring_issue_from_csr(sv->kr, q.ca_key_name, ca, q.csr_pem, q.csr_len, &p, &pem, a->msg,
                               sizeof(a->msg)) != 0) {
        a->status = SG_ST_ERR;
    } else {
        sg_wire_put_str(w, pem);
        a->needs_sync = 1;
    }
    free(ca);
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
    sg_wire_get_str(r, &name, KEY_NAME_MAX);
    sg_wire_get(r, &msg, &len);
    if (decoded(r, a) != 0)
        return;
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
    size_t len, siglen = SIGNER_SIG_MAX;
    unsigned char sig[SIGNER_SIG_MAX];
    sg_wire_get(r, &data, &len);
    if (decoded(r, a) != 0)
        return;
    if (len > SG_TLS_DATA_MAX) {
        a->status = SG_ST_REFUSED;
        snprintf(a->msg, sizeof(a->msg), "data: longer than %d bytes", SG_TLS_DATA_MAX);
        return;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, sv->tls) == 1 &&
        EVP_DigestSign(md, sig, &siglen, data, len) == 1) {
        sg_wire_put(w, sig, siglen);
    } else {
        a->status = SG_ST_ERR;
        snprintf(a->msg, sizeof(a->msg), "TLS signature failed");
    }
    EVP_MD_CTX_free(md);
}

static void
op_ca_rollover(sg_serve *sv, struct sg_reader *r, struct sg_writer *w, struct answer *a)
{
    int64_t tenant_id;
    const char *name;
    (void)sv, (void)w;
    sg_wire_get_int(r, &tenant_id);
    sg_wire_get_str(r, &name, SG_TENANT_NAME_MAX);
    if (decoded(r, a) != 0)
        return;
    a->status = status_of(SIGNER_ERR);
    snprintf(a->msg, sizeof(a->msg), "CA rollover is not available yet");
}

typedef void (*op_fn)(sg_serve *, struct sg_reader *, struct sg_writer *, struct answer *);

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
