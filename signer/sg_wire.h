/* sg_wire: the request protocol between aegisd and its signer process (normative; copied into
 * docs/architecture.md "The signer protocol").
 *
 * Transport. AF_UNIX SOCK_SEQPACKET socketpairs made by aegisd before it forks the signer; each
 * message is exactly one frame, at most SG_WIRE_MAX (262144) bytes; a message longer than that
 * (MSG_TRUNC on receipt) is malformed. Both sides set SO_SNDBUF and SO_RCVBUF so that a frame of
 * SG_WIRE_MAX bytes fits. aegisd sends at most one request on a socket at a time and the signer
 * answers on the socket it was asked on.
 *
 * Frame. A 16-byte header, all integers unsigned and in network byte order (big-endian):
 *     offset 0  4 bytes  magic "AGS1" (0x41 0x47 0x53 0x31)
 *     offset 4  u16      version, 1
 *     offset 6  u16      code: an op (request) or a status (reply), below
 *     offset 8  u32      request id: chosen by aegisd, nonzero, copied into the reply
 *     offset 12 u32      body length: exactly the frame's length minus 16
 * then the body: a sequence of fields, each a u32 length n and n bytes, in the fixed order given
 * for the code below. Field types: int = n is 8, a two's complement signed 64-bit integer; flag =
 * n is 1, the byte 0 or 1; str = bytes none of which is NUL (the receiver adds the NUL; see
 * Limits); bytes = any bytes.
 *
 * Requests (code = op) and the body of their OK reply:
 *     1 PING               ()                                    -> (int worker pid)
 *     2 ISSUE_DEVICE_CERT  (int tenant_id, str tenant_name, str device_id, str ca_key_name,
 *                           str csr_pem, int lifetime_s)         -> (str leaf certificate PEM)
 *     3 ED25519_PUBLIC     (str key_name, flag create)           -> (bytes public key, 32;
 *                                                                    str key id, 64 hex)
 *     4 ED25519_SIGN       (str key_name, bytes message)         -> (str signature, 128 hex;
 *                                                                    str key id, 64 hex)
 *     5 TLS_SIGN           (bytes data)                          -> (bytes DER signature, <= 72)
 *     6 CA_ROLLOVER        (int tenant_id, str tenant_name)      -> (str key_name; str CA PEM)
 *     7 TLS_SIGN_DIGEST    (bytes SHA-256 digest, 32)            -> (bytes DER signature, <= 72)
 *     8 TLS_RELOAD         (flag commit)                         -> (str certificate chain PEM)
 * Replies (code = status):
 *     0x8000 OK         the op's reply body above
 *     0x8001 ERR        (str message): malformed request or internal failure
 *     0x8002 REFUSED    (str message): the signer's policy refused it (which rule)
 *     0x8003 BUSY       (int retry_after_s, str message): the tenant's issuance rate is spent
 *     0x8004 VERSION    (str message): the request's version is not one the signer speaks; the
 *                       reply itself carries version 1
 *     0x8005 RESTARTED  (int restart count, str message), request id 0: written by the signer's
 *                       supervisor on every socket each time it restarts the worker; a request
 *                       in flight on that socket will not be answered.
 * An ERR with request id 0 is the worker's start failure (its message says why) and is written on
 * the first socket before the worker exits.
 *
 * Limits. A key_name is at most 64 bytes, CA_ROLLOVER's tenant_name at most 128 (longer: ERR).
 * The fields of ISSUE_DEVICE_CERT are bounded only by the frame: the signer's policy judges them
 * and answers REFUSED naming the rule (tenant name 1..128 printable bytes, device id 64 lowercase
 * hex, ca_key_name "tenants/<tenant_id>/ca-<n>", CSR 1..8192 bytes, lifetime 1..its maximum).
 * TLS_SIGN data and ED25519_SIGN messages that are not what a TLS server or that online role signs
 * are REFUSED too; a TLS_SIGN_DIGEST digest that is not 32 bytes is (its content cannot be
 * checked: GnuTLS hands an external key only the digest of the handshake data).
 *
 * TLS_RELOAD makes the worker read its TLS key file and certificate chain file again (the paths it
 * was started with) and check them: the key EC P-256 and the public key of the chain's first
 * certificate. If they fail, it answers ERR naming what is wrong and keeps its key. If they pass,
 * it answers with the chain file's text (at most 64 KiB) and, only when commit is 1, signs
 * TLS_SIGN and TLS_SIGN_DIGEST with the new key from then on (commit 0 lets aegisd check the chain
 * its own way before anything changes). A worker the supervisor restarts reads both files anew
 * anyway.
 *
 * Answering. The signer reads one frame from each socket that has one, answers the requests that
 * issue nothing at once and appends the issuances to its issuance log; an issuance's reply is sent
 * only after an fdatasync of the log that began after its line was written (ERR when the log
 * cannot be written: no certificate leaves the signer unlogged). The flushes run in a child
 * process of the worker, one at a time, each covering every issuance appended before it began, so
 * requests that issue nothing are answered while the disk flushes; a socket whose reply waits for
 * a flush is not read meanwhile.
 *
 * Receiving is strict: a frame shorter than 16 bytes, with another magic, a body length other than
 * the frame's, an unknown code, a field whose length runs past the body, a missing field, a
 * fixed-size field of another size, a NUL inside a str, or bytes after the last field is malformed
 * (the signer answers ERR, copying bytes 8..11 as the request id when the frame has at least 16
 * bytes, 0 otherwise; aegisd treats a malformed reply as no reply). Replies whose request id is
 * not the one awaited are stale and dropped. */
#ifndef AEGIS_SG_WIRE_H
#define AEGIS_SG_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define SG_WIRE_MAGIC "AGS1"
#define SG_WIRE_VERSION 1
#define SG_WIRE_HDR 16
#define SG_WIRE_MAX (256 * 1024)

enum sg_op {
    SG_OP_PING = 1,
    SG_OP_ISSUE_DEVICE_CERT = 2,
    SG_OP_ED25519_PUBLIC = 3,
    SG_OP_ED25519_SIGN = 4,
    SG_OP_TLS_SIGN = 5,
    SG_OP_CA_ROLLOVER = 6,
    SG_OP_TLS_SIGN_DIGEST = 7,
    SG_OP_TLS_RELOAD = 8,
};

enum sg_status {
    SG_ST_OK = 0x8000,
    SG_ST_ERR = 0x8001,
    SG_ST_REFUSED = 0x8002,
    SG_ST_BUSY = 0x8003,
    SG_ST_VERSION = 0x8004,
    SG_ST_RESTARTED = 0x8005,
};

struct sg_hdr {
    uint16_t version;
    uint16_t code;
    uint32_t id;
    uint32_t body_len;
};

/* A frame being written into a buffer the caller owns (cap bytes, at most SG_WIRE_MAX). A field
 * that does not fit makes the writer fail (sg_wire_end returns -1). */
struct sg_writer {
    unsigned char *buf;
    size_t cap, len;
    int overflow;
};

void sg_wire_begin(struct sg_writer *w, unsigned char *buf, size_t cap, uint16_t code, uint32_t id);
void sg_wire_put(struct sg_writer *w, const void *p, size_t n);
void sg_wire_put_str(struct sg_writer *w, const char *s); /* s may not hold a NUL, by its type */
void sg_wire_put_int(struct sg_writer *w, int64_t v);
void sg_wire_put_flag(struct sg_writer *w, int v);
/* Fills the header's body length. Returns the frame's length, or -1 when a field did not fit. */
long sg_wire_end(struct sg_writer *w);

/* A received frame's body being read in place. Reading a str writes its NUL into the frame (the
 * str moves 4 bytes back over its own length), so the buffer must be writable and the pointers
 * the reader hands out live as long as it. Every getter fails, and so does every later one, when
 * the field is missing or of the wrong form. */
struct sg_reader {
    unsigned char *p;
    size_t left;
    int bad;
    char why[64]; /* the first failure, for an ERR message */
};

/* Parses the header of the n-byte frame buf (the magic, the body length, a known code; the
 * version is handed back, not checked: the signer answers another with VERSION) and starts r on
 * its body. Returns 0, or -1 (message in err). */
int sg_wire_parse(unsigned char *buf, size_t n, struct sg_hdr *h, struct sg_reader *r, char *err,
                  size_t errlen);
/* The request id of an n-byte frame whose header may be malformed: 0 when it is shorter than a
 * header. */
uint32_t sg_wire_peek_id(const unsigned char *buf, size_t n);
/* Whether code is a request op (1) or a reply status (0). */
int sg_wire_is_op(uint16_t code);

int sg_wire_get(struct sg_reader *r, const unsigned char **p, size_t *n);
int sg_wire_get_str(struct sg_reader *r, const char **s, size_t max);
int sg_wire_get_int(struct sg_reader *r, int64_t *v);
int sg_wire_get_flag(struct sg_reader *r, int *v);
/* The end of the body: fails when bytes are left. Returns 0, or -1 (message in err: the first
 * failure of any getter before it). */
int sg_wire_done(struct sg_reader *r, char *err, size_t errlen);

/* Sets SO_SNDBUF and SO_RCVBUF of fd so that a frame of SG_WIRE_MAX bytes fits. Returns 0 / -1. */
int sg_wire_bufsize(int fd);

#endif
