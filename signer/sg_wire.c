#include "sg_wire.h"

#include "errbuf.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void
put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void
put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint16_t
get_u16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t
get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void
sg_wire_begin(struct sg_writer *w, unsigned char *buf, size_t cap, uint16_t code, uint32_t id)
{
    assert(cap >= SG_WIRE_HDR && cap <= SG_WIRE_MAX);
    w->buf = buf;
    w->cap = cap;
    w->len = SG_WIRE_HDR;
    w->overflow = 0;
    for (size_t i = 0; i < 4; i++) /* the magic's 4 bytes, without its string's NUL */
        buf[i] = (unsigned char)SG_WIRE_MAGIC[i];
    put_u16(buf + 4, SG_WIRE_VERSION);
    put_u16(buf + 6, code);
    put_u32(buf + 8, id);
    put_u32(buf + 12, 0);
}

void
sg_wire_put(struct sg_writer *w, const void *p, size_t n)
{
    if (w->overflow || n > w->cap - w->len || w->cap - w->len - n < 4) {
        w->overflow = 1;
        return;
    }
    put_u32(w->buf + w->len, (uint32_t)n);
    if (n > 0)
        memcpy(w->buf + w->len + 4, p, n);
    w->len += 4 + n;
}

void
sg_wire_put_str(struct sg_writer *w, const char *s)
{
    sg_wire_put(w, s, strlen(s));
}

void
sg_wire_put_int(struct sg_writer *w, int64_t v)
{
    unsigned char b[8];
    uint64_t u = (uint64_t)v;
    put_u32(b, (uint32_t)(u >> 32));
    put_u32(b + 4, (uint32_t)u);
    sg_wire_put(w, b, sizeof(b));
}

void
sg_wire_put_flag(struct sg_writer *w, int v)
{
    unsigned char b = v ? 1 : 0;
    sg_wire_put(w, &b, 1);
}

long
sg_wire_end(struct sg_writer *w)
{
    if (w->overflow)
        return -1;
    put_u32(w->buf + 12, (uint32_t)(w->len - SG_WIRE_HDR));
    return (long)w->len;
}

uint32_t
sg_wire_peek_id(const unsigned char *buf, size_t n)
{
    return n >= SG_WIRE_HDR ? get_u32(buf + 8) : 0;
}

int
sg_wire_is_op(uint16_t code)
{
    return code >= SG_OP_PING && code <= SG_OP_TLS_RELOAD;
}

static int
known_code(uint16_t code)
{
    return sg_wire_is_op(code) || (code >= SG_ST_OK && code <= SG_ST_RESTARTED);
}

int
sg_wire_parse(unsigned char *buf, size_t n, struct sg_hdr *h, struct sg_reader *r, char *err,
              size_t errlen)
{
    memset(h, 0, sizeof(*h));
    if (n < SG_WIRE_HDR || n > SG_WIRE_MAX) {
        errbuf_set(err, errlen, "frame of %zu bytes", n);
        return -1;
    }
    if (memcmp(buf, SG_WIRE_MAGIC, 4) != 0) {
        errbuf_set(err, errlen, "bad magic");
        return -1;
    }
    h->version = get_u16(buf + 4);
    h->code = get_u16(buf + 6);
    h->id = get_u32(buf + 8);
    h->body_len = get_u32(buf + 12);
    if (h->body_len != n - SG_WIRE_HDR) {
        errbuf_set(err, errlen, "body length %u in a frame of %zu bytes", h->body_len, n);
        return -1;
    }
    if (!known_code(h->code)) {
        errbuf_set(err, errlen, "unknown code %u", h->code);
        return -1;
    }
    r->p = buf + SG_WIRE_HDR;
    r->left = h->body_len;
    r->bad = 0;
    r->why[0] = '\0';
    return 0;
}

static int
fail(struct sg_reader *r, const char *why)
{
    if (!r->bad)
        snprintf(r->why, sizeof(r->why), "%s", why);
    r->bad = 1;
    return -1;
}

/* The next field: *at its bytes (after the length), *n its length. */
static int
next(struct sg_reader *r, unsigned char **at, size_t *n)
{
    if (r->bad)
        return -1;
    if (r->left < 4)
        return fail(r, "a field is missing");
    uint32_t len = get_u32(r->p);
    if (len > r->left - 4)
        return fail(r, "a field runs past the frame");
    *at = r->p + 4;
    *n = len;
    r->p += 4 + len;
    r->left -= 4 + len;
    return 0;
}

int
sg_wire_get(struct sg_reader *r, const unsigned char **p, size_t *n)
{
    unsigned char *at;
    if (next(r, &at, n) != 0)
        return -1;
    *p = at;
    return 0;
}

int
sg_wire_get_str(struct sg_reader *r, const char **s, size_t max)
{
    unsigned char *at;
    size_t n;
    if (next(r, &at, &n) != 0)
        return -1;
    if (n > max)
        return fail(r, "a string is too long");
    if (memchr(at, '\0', n) != NULL)
        return fail(r, "a string holds a NUL");
    /* Over its own length field, which was read: the NUL then lands inside the field. */
    unsigned char *dst = at - 4;
    memmove(dst, at, n);
    dst[n] = '\0';
    *s = (const char *)dst;
    return 0;
}

int
sg_wire_get_int(struct sg_reader *r, int64_t *v)
{
    unsigned char *at;
    size_t n;
    if (next(r, &at, &n) != 0)
        return -1;
    if (n != 8)
        return fail(r, "an integer is not 8 bytes");
    *v = (int64_t)(((uint64_t)get_u32(at) << 32) | get_u32(at + 4));
    return 0;
}

int
sg_wire_get_flag(struct sg_reader *r, int *v)
{
    unsigned char *at;
    size_t n;
    if (next(r, &at, &n) != 0)
        return -1;
    if (n != 1 || at[0] > 1)
        return fail(r, "a flag is not one byte 0 or 1");
    *v = at[0];
    return 0;
}

int
sg_wire_done(struct sg_reader *r, char *err, size_t errlen)
{
    if (!r->bad && r->left != 0)
        fail(r, "bytes after the last field");
    if (r->bad) {
        errbuf_set(err, errlen, "malformed frame: %s", r->why);
        return -1;
    }
    return 0;
}

int
sg_wire_bufsize(int fd)
{
    /* The kernel doubles what is asked (for its bookkeeping) up to twice net.core.wmem_max; a
     * SEQPACKET message must fit in the send buffer less 32 bytes. */
    int want = SG_WIRE_MAX + 4096, got = 0;
    socklen_t gl = sizeof(got);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want)) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &gl) != 0)
        return -1;
    return got >= SG_WIRE_MAX + 32 ? 0 : -1;
}
