/* api_file: file replies (api_reply_file, api.h) and single byte ranges (RFC 9110 14).
 *
 * A file reply is a libmicrohttpd callback response that preads API_FILE_BLOCK bytes at a time.
 * libmicrohttpd's own file responses (MHD_create_response_from_fd_at_offset64) read in blocks of
 * MHD_FILE_READ_BLOCK_SIZE, a compile-time 4 KiB in 0.9.75 with no option to change it, and their
 * sendfile path does not apply to TLS: every 4 KiB would be its own TLS record and send call.
 * bench/update/download.py (64 MiB over TLS, next to nginx on the same 2-core machine, the same
 * curl client): libmicrohttpd's file response 0.51x nginx (0.37x with 4 downloads at once); blocks
 * of 16 KiB 1.12x (0.91x), 64 KiB 1.07x (0.92x), 256 KiB 0.95x (0.86x) with more memory per
 * download. 64 KiB it is. */
#include "http_int.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct file_ctx {
    int fd;
    uint64_t offset;
};

static ssize_t
file_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    const struct file_ctx *f = cls;
    ssize_t n;
    do {
        n = pread(f->fd, buf, max, (off_t)(f->offset + pos));
    } while (n < 0 && errno == EINTR);
    /* 0 here is a file shorter than announced: the Content-Length cannot be kept, so cut. */
    return n > 0 ? n : (ssize_t)MHD_CONTENT_READER_END_WITH_ERROR;
}

static void
file_free(void *cls)
{
    struct file_ctx *f = cls;
    close(f->fd);
    free(f);
}

void
http_file_drop(api_req *r)
{
    if (r->has_file)
        close(r->file_fd);
    r->has_file = 0;
}

struct MHD_Response *
http_file_response(api_req *r)
{
    assert(r->has_file);
    struct file_ctx *f = malloc(sizeof(*f));
    if (f == NULL)
        return NULL;
    f->fd = r->file_fd;
    f->offset = r->file_offset;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(r->file_len, API_FILE_BLOCK, file_read, f, file_free);
    if (resp == NULL) {
        free(f); /* the fd stays the request's, closed by http_file_drop */
        return NULL;
    }
    r->has_file = 0; /* the response owns the fd now */
    return resp;
}

void
api_reply_file(api_req *r, int status, int fd, uint64_t offset, uint64_t len, const char *ctype)
{
    assert(fd >= 0);
    json_decref(r->resp);
    r->resp = NULL;
    free(r->resp_text);
    r->resp_text = NULL;
    http_file_drop(r);
    r->file_fd = fd;
    r->has_file = 1;
    r->file_offset = offset;
    r->file_len = len;
    r->resp_ctype = ctype;
    r->status = status;
}

/* Digits at *p as a number, saturated at UINT64_MAX (a position past any file); -1 without any. */
static int
range_num(const char **p, uint64_t *v)
{
    const char *s = *p;
    uint64_t n = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
    }
    *p = s;
    *v = n;
    return 0;
}

enum api_range_kind
api_range_parse(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
    uint64_t a = 0, b = UINT64_MAX;
    int suffix = 0;
    if (h == NULL || strncasecmp(h, "bytes", 5) != 0)
        return API_RANGE_WHOLE;
    const char *p = h + 5;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p++ != '=')
        return API_RANGE_WHOLE;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '-') {
        p++;
        suffix = 1;
        if (range_num(&p, &b) != 0)
            return API_RANGE_WHOLE;
    } else {
        if (range_num(&p, &a) != 0 || *p++ != '-')
            return API_RANGE_WHOLE;
        if (*p >= '0' && *p <= '9' && (range_num(&p, &b) != 0 || b < a))
            return API_RANGE_WHOLE;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '\0') /* several ranges (a comma) or trailing garbage */
        return API_RANGE_WHOLE;
    if (suffix) {
        if (b == 0 || size == 0)
            return API_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return API_RANGE_PART;
    }
    if (a >= size)
        return API_RANGE_UNSATISFIABLE;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return API_RANGE_PART;
}

enum api_range_kind
api_range(api_req *r, uint64_t size, const char *etag, uint64_t *first, uint64_t *last)
{
    /* Range is defined for GET only (RFC 9110 14.2): HEAD answers as a whole GET would. */
    if (strcmp(r->method, "GET") != 0)
        return API_RANGE_WHOLE;
    const char *ifr = api_header(r, MHD_HTTP_HEADER_IF_RANGE);
    /* If-Range compares strongly: a weak tag or a date never matches. */
    if (ifr != NULL && (etag == NULL || strcmp(ifr, etag) != 0))
        return API_RANGE_WHOLE;
    return api_range_parse(api_header(r, MHD_HTTP_HEADER_RANGE), size, first, last);
}

void
api_reply_file_ranged(api_req *r, int fd, uint64_t size, const char *etag, const char *ctype)
{
    uint64_t first = 0, last = 0;
    char cr[64];
    (void)api_reply_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    (void)api_reply_header(r, MHD_HTTP_HEADER_ETAG, etag);
    if (api_if_none_match(r, etag)) {
        close(fd);
        api_reply(r, 304, NULL);
        return;
    }
    switch (api_range(r, size, etag, &first, &last)) {
    case API_RANGE_PART:
        snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
        (void)api_reply_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        api_reply_file(r, 206, fd, first, last - first + 1, ctype);
        break;
    case API_RANGE_UNSATISFIABLE:
        close(fd);
        snprintf(cr, sizeof(cr), "bytes */%" PRIu64, size);
        (void)api_reply_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        api_error(r, 416, "range_not_satisfiable",
                  "the range starts past the end (%" PRIu64 " bytes)", size);
        break;
    default:
        api_reply_file(r, 200, fd, 0, size, ctype);
        break;
    }
}
