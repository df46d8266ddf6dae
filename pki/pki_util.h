/* pki_util: helpers the pki files share (OpenSSL error text, memory BIOs, times, UTF-8 cuts).
 * Private to pki/: the interface of the layer is pki.h. */
#ifndef AEGIS_PKI_UTIL_H
#define AEGIS_PKI_UTIL_H

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <stddef.h>
#include <stdint.h>

#define PKI_NAME_CHARS_MAX 64 /* ub_common_name / ub_organization_name */

/* err gets "what: <last OpenSSL error>"; the OpenSSL error queue is cleared. Never contains key
 * material: OpenSSL's error strings name the failing operation and reason only. */
void pki_ossl_err(char *err, size_t errlen, const char *what);
/* A passphrase callback that refuses, so an encrypted key never makes OpenSSL prompt on the
 * terminal. */
int pki_no_passphrase(char *buf, int size, int rwflag, void *u);
/* The contents of a memory BIO as a new NUL-terminated string (malloc'd, caller frees); *lenp
 * (may be NULL) gets its length. NULL on failure. */
char *pki_bio_to_string(BIO *bio, size_t *lenp);
/* t as unix seconds: 0 or -1. */
int pki_asn1_to_unix(const ASN1_TIME *t, int64_t *out);
/* buf = "dir/name": 0, or -1 (message in err) when it does not fit. */
int pki_join(char *buf, size_t len, const char *dir, const char *name, char *err, size_t errlen);
/* 1 if path exists (stat succeeds), else 0. */
int pki_exists(const char *path);
/* The byte length of the first max UTF-8 characters of s. */
size_t pki_utf8_prefix(const char *s, size_t max);

#endif
