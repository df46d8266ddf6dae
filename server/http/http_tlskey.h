/* http_tlskey: the server's TLS identity without its private key. The certificate chain is parsed
 * once at start; the private key is a GnuTLS external key whose every signature is asked of the
 * signer (signer_tls_sign_digest: GnuTLS hands an external ECDSA key the digest only), so aegisd
 * never reads or holds the TLS key (issue 13). Only ECDSA P-256 server keys: the signer signs
 * ECDSA-SHA256 only. A signer failure fails that one handshake (the signer bounds its own wait).
 * Thread-safe after http_tlskey_new: handshakes on any thread share it read-only. */
#ifndef AEGIS_HTTP_TLSKEY_H
#define AEGIS_HTTP_TLSKEY_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include <stddef.h>
#include <stdint.h>

struct signer;
typedef struct http_tlskey http_tlskey;

/* The most certificates a chain may hold (leaf first, then its issuers). */
#define HTTP_TLSKEY_CHAIN_MAX 8

/* Parses chain_pem (the leaf first, each certificate issued by the next; the leaf's key EC P-256)
 * and checks with one signature that sg signs with the leaf's key. sg is borrowed and must outlive
 * the result. Returns NULL on error (message in err). Free with http_tlskey_free. */
http_tlskey *http_tlskey_new(struct signer *sg, const char *chain_pem, char *err, size_t errlen);
/* Whether chain_pem is a chain http_tlskey_new would take (its key not asked). Returns 0, or -1
 * (message in err). */
int http_tlskey_check_chain(const char *chain_pem, char *err, size_t errlen);
/* Frees the chain and the external key (and ends its serving), and the identities it replaced: only
 * once no handshake can use them (after MHD_stop_daemon). Accepts NULL. */
void http_tlskey_free(http_tlskey *k);

/* Makes next the identity http_tlskey_retrieve answers with instead of cur, which serves (SIGHUP's
 * certificate renewal). A handshake that already took cur's chain and key may still use them, so
 * cur is not freed: next keeps it (and what cur kept) until http_tlskey_free(next), a few KiB per
 * renewal. Call from one thread. */
void http_tlskey_replace(http_tlskey *cur, http_tlskey *next);
/* The leaf certificate's notAfter (unix s), 0 if it cannot be read. */
int64_t http_tlskey_not_after(const http_tlskey *k);
/* The leaf certificate's serial number in lowercase hex into buf (at most 40 digits). */
void http_tlskey_serial(const http_tlskey *k, char buf[41]);

/* Makes k the identity http_tlskey_retrieve answers with, until http_tlskey_free(k): the retrieve
 * callback has no argument to find it by, so there is one per process. Call before the server
 * starts its threads. Fails (message in err) when another one serves. */
int http_tlskey_serve(http_tlskey *k, char *err, size_t errlen);

/* libmicrohttpd's MHD_OPTION_HTTPS_CERT_CALLBACK (gnutls_certificate_retrieve_function2): the
 * serving chain and key, both owned by it (GnuTLS frees neither). Returns -1 (the handshake fails)
 * when none serves. */
int http_tlskey_retrieve(gnutls_session_t s, const gnutls_datum_t *req_ca_rdn, int nreqs,
                         const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                         gnutls_pcert_st **pcert, unsigned int *pcert_length,
                         gnutls_privkey_t *pkey);

#endif
