#include "rest.h"

#include "errbuf.h"

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define URL_MAX 4096
#define STREAM_ERROR_MAX ((size_t)64 * 1024)

struct rest {
    CURL *curl;
    struct curl_slist *hdrs;       /* Authorization, Accept, no Expect, no Content-Type */
    struct curl_slist *hdrs_octet; /* the same with Content-Type: application/octet-stream */
    struct curl_slist *hdrs_json;  /* the same with Content-Type: application/json */
    char *base;
    long timeout_s;
    size_t max_response;
    char errbuf[CURL_ERROR_SIZE];
};

/* A body being received: grown by doubling, old copies wiped (they may hold a new token). */
struct buf {
    char *data;
    size_t len, cap, max;
    int too_big;
};

static size_t
on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct buf *b = userdata;
    size_t n = size * nmemb;
    if (n > b->max - b->len) {
        b->too_big = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = malloc(cap);
        if (p == NULL)
            return 0;
        if (b->data != NULL) {
            memcpy(p, b->data, b->len);
            sodium_memzero(b->data, b->cap);
            free(b->data);
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Zeroes the strings of a header list (the Authorization header) and frees it. */
static void
slist_free_secret(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p != NULL; p = p->next)
        if (p->data != NULL)
            sodium_memzero(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

void
rest_close(rest *r)
{
    if (r == NULL)
        return;
    if (r->curl != NULL)
        curl_easy_cleanup(r->curl);
    slist_free_secret(r->hdrs);
    slist_free_secret(r->hdrs_json);
    slist_free_secret(r->hdrs_octet);
    free(r->base);
    free(r);
    curl_global_cleanup(); /* reference-counted: matches the rest_open that made r */
}

/* Both header lists: lines common to every request, then each list's Content-Type line. */
static int
make_headers(rest *r, const char *token)
{
    size_t alen = strlen("Authorization: Bearer ") + strlen(token) + 1;
    char *auth = malloc(alen);
    int rc = -1;
    if (auth == NULL)
        return -1;
    snprintf(auth, alen, "Authorization: Bearer %s", token);
    /* Without a body no Content-Type at all (curl would add a form type to an empty POST). */
    const char *common[] = {auth, "Accept: application/json", "Expect:"};
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
        struct curl_slist *a = curl_slist_append(r->hdrs, common[i]);
        if (a == NULL)
            goto out;
        r->hdrs = a;
        a = curl_slist_append(r->hdrs_json, common[i]);
        if (a == NULL)
            goto out;
        r->hdrs_json = a;
        a = curl_slist_append(r->hdrs_octet, common[i]);
        if (a == NULL)
            goto out;
        r->hdrs_octet = a;
    }
    struct curl_slist *o =
        curl_slist_append(r->hdrs_octet, "Content-Type: application/octet-stream");
    if (o == NULL)
        goto out;
    r->hdrs_octet = o;
    struct curl_slist *a = curl_slist_append(r->hdrs_json, "Content-Type: application/json");
    if (a == NULL)
        goto out;
    r->hdrs_json = a;
    a = curl_slist_append(r->hdrs, "Content-Type:");
    if (a == NULL)
        goto out;
    r->hdrs = a;
    rc = 0;
out:
    sodium_memzero(auth, alen);
    free(auth);
    return rc;
}

static int
configure(rest *r, const struct rest_opts *o)
{
    CURL *cu = r->curl;
    CURLcode e = CURLE_OK;
    e |= curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    e |= curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, r->errbuf);
    e |= curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT, o->timeout_s);
    e |= curl_easy_setopt(cu, CURLOPT_TIMEOUT, o->timeout_s);
    e |= curl_easy_setopt(cu, CURLOPT_SSL_VERIFYPEER, 1L);
    e |= curl_easy_setopt(cu, CURLOPT_SSL_VERIFYHOST, 2L);
    e |= curl_easy_setopt(cu, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    e |= curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "https");
#else
    e |= curl_easy_setopt(cu, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
    if (o->user_agent != NULL)
        e |= curl_easy_setopt(cu, CURLOPT_USERAGENT, o->user_agent);
    e |= curl_easy_setopt(cu, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_response);
    e |= curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_write);
    if (o->cafile != NULL)
        e |= curl_easy_setopt(cu, CURLOPT_CAINFO, o->cafile);
    return e == CURLE_OK ? 0 : -1;
}

int
rest_open(const struct rest_opts *o, rest **out, char *err, size_t errlen)
{
    assert(o->base != NULL && o->token != NULL && o->timeout_s > 0 && o->max_response > 0);
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        errbuf_set(err, errlen, "cannot initialise libcurl");
        return REST_LOCAL;
    }
    rest *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        curl_global_cleanup();
        errbuf_set(err, errlen, "out of memory");
        return REST_LOCAL;
    }
    r->timeout_s = o->timeout_s;
    r->max_response = o->max_response;
    r->base = strdup(o->base);
    r->curl = curl_easy_init();
    if (r->base == NULL || r->curl == NULL || make_headers(r, o->token) != 0) {
        errbuf_set(err, errlen, r->curl == NULL ? "cannot initialise libcurl" : "out of memory");
        goto fail;
    }
    if (configure(r, o) != 0) {
        errbuf_set(err, errlen, "cannot configure libcurl");
        goto fail;
    }
    *out = r;
    return REST_OK;
fail:
    rest_close(r);
    return REST_LOCAL;
}

const char *
rest_base(const rest *r)
{
    return r->base;
}

void
rest_reply_free(struct rest_reply *rep)
{
    if (rep->body != NULL) {
        sodium_memzero(rep->body, rep->len);
        free(rep->body);
    }
    json_decref(rep->json);
    memset(rep, 0, sizeof(*rep));
}

/* The transfer's outcome as a return code, libcurl's text in err. */
static int
transfer_error(rest *r, CURLcode cr, char *err, size_t errlen)
{
    errbuf_set(err, errlen, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(cr));
    return cr == CURLE_PEER_FAILED_VERIFICATION || cr == CURLE_SSL_CACERT_BADFILE ? REST_TLS
                                                                                  : REST_CONN;
}

/* Moves the received body into rep and parses it: strictly for a 2xx answer, leniently else. */
static int
take_body(struct buf *b, struct rest_reply *rep, char *err, size_t errlen)
{
    json_error_t jerr;
    rep->body = b->data;
    rep->len = b->len;
    memset(b, 0, sizeof(*b));
    if (rep->len == 0)
        return REST_OK;
    rep->json = json_loadb(rep->body, rep->len, JSON_REJECT_DUPLICATES, &jerr);
    if (rep->json == NULL && rep->status >= 200 && rep->status <= 299) {
        errbuf_set(err, errlen, "%s", jerr.text);
        return REST_BAD_JSON;
    }
    return REST_OK;
}

static int
full_url(rest *r, const char *path, char *url, char *err, size_t errlen)
{
    if (snprintf(url, URL_MAX, "%s%s", r->base, path) >= URL_MAX) {
        errbuf_set(err, errlen, "request URL too long");
        return REST_LOCAL;
    }
    return REST_OK;
}

/* What a transfer into b came to: REST_TOO_BIG, a transfer error, or the answer in rep. */
static int
outcome(rest *r, CURLcode cr, struct buf *b, struct rest_reply *rep, char *err, size_t errlen)
{
    if (b->too_big || cr == CURLE_FILESIZE_EXCEEDED) {
        errbuf_set(err, errlen, "the response is larger than %zu MiB", r->max_response >> 20);
        return REST_TOO_BIG;
    }
    if (cr != CURLE_OK)
        return transfer_error(r, cr, err, errlen);
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &rep->status);
    return take_body(b, rep, err, errlen);
}

int
rest_request(rest *r, const char *method, const char *path, const json_t *body,
             struct rest_reply *rep, char *err, size_t errlen)
{
    struct buf b = {NULL, 0, 0, r->max_response, 0};
    char *text = NULL;
    char url[URL_MAX];
    int rc;

    memset(rep, 0, sizeof(*rep));
    rc = full_url(r, path, url, err, errlen);
    if (rc != REST_OK)
        return rc;
    if (body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL) {
        errbuf_set(err, errlen, "cannot encode the request body");
        return REST_LOCAL;
    }
    CURL *cu = r->curl;
    r->errbuf[0] = '\0';
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, (char *)NULL);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, text != NULL ? r->hdrs_json : r->hdrs);
    if (strcmp(method, "GET") == 0 || strcmp(method, "DELETE") == 0) {
        curl_easy_setopt(cu, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(cu, CURLOPT_POST, 1L);
        curl_easy_setopt(cu, CURLOPT_POSTFIELDS, text != NULL ? text : "");
        curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(text != NULL ? strlen(text) : 0));
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, method);

    CURLcode cr = curl_easy_perform(cu);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, (void *)NULL);
    rc = outcome(r, cr, &b, rep, err, errlen);
    free(text);
    if (b.data != NULL)
        sodium_memzero(b.data, b.cap);
    free(b.data);
    return rc;
}

/* CURLOPT_READFUNCTION of rest_upload: the next piece of the file. */
static size_t
on_read(char *buf, size_t size, size_t n, void *arg)
{
    FILE *in = arg;
    size_t got = fread(buf, 1, size * n, in);
    return got == 0 && ferror(in) ? CURL_READFUNC_ABORT : got;
}

int
rest_upload(rest *r, const char *path, FILE *in, uint64_t size, struct rest_reply *rep, char *err,
            size_t errlen)
{
    struct buf b = {NULL, 0, 0, r->max_response, 0};
    char url[URL_MAX];
    memset(rep, 0, sizeof(*rep));
    int rc = full_url(r, path, url, err, errlen);
    if (rc != REST_OK)
        return rc;
    CURL *cu = r->curl;
    r->errbuf[0] = '\0';
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, (char *)NULL);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, r->hdrs_octet);
    curl_easy_setopt(cu, CURLOPT_POST, 1L);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDS, (char *)NULL);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
    curl_easy_setopt(cu, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(cu, CURLOPT_READDATA, in);
    /* a large file may take long: no overall timeout, but a stall is an error */
    curl_easy_setopt(cu, CURLOPT_TIMEOUT, 0L);
    curl_easy_setopt(cu, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(cu, CURLOPT_LOW_SPEED_TIME, r->timeout_s);
    CURLcode cr = curl_easy_perform(cu);
    rc = outcome(r, cr, &b, rep, err, errlen);
    /* back to the settings of rest_request */
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, (void *)NULL);
    curl_easy_setopt(cu, CURLOPT_READFUNCTION, (void *)NULL);
    curl_easy_setopt(cu, CURLOPT_READDATA, (void *)NULL);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT, r->timeout_s);
    curl_easy_setopt(cu, CURLOPT_LOW_SPEED_LIMIT, 0L);
    curl_easy_setopt(cu, CURLOPT_LOW_SPEED_TIME, 0L);
    if (b.data != NULL)
        sodium_memzero(b.data, b.cap);
    free(b.data);
    return rc;
}

/* A streamed download: a 2xx body goes to out as it arrives; any other is kept (bounded). */
struct sink {
    CURL *curl;
    FILE *out;
    struct buf err;
    long status;
    int write_failed;
    uint64_t bytes;
};

static size_t
on_stream(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct sink *k = userdata;
    size_t n = size * nmemb;
    if (k->status == 0)
        curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &k->status);
    if (k->status >= 400 || k->status < 200)
        return on_write(ptr, size, nmemb, &k->err);
    if (fwrite(ptr, 1, n, k->out) != n) {
        k->write_failed = 1;
        return 0;
    }
    k->bytes += n;
    return n;
}

int
rest_stream(rest *r, const char *path, FILE *out, struct rest_reply *rep, uint64_t *bytes,
            char *err, size_t errlen)
{
    struct sink k;
    char url[URL_MAX];
    memset(rep, 0, sizeof(*rep));
    memset(&k, 0, sizeof(k));
    *bytes = 0;
    int rc = full_url(r, path, url, err, errlen);
    if (rc != REST_OK)
        return rc;
    k.curl = r->curl;
    k.out = out;
    k.err.max = STREAM_ERROR_MAX;
    CURL *cu = r->curl;
    r->errbuf[0] = '\0';
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, (char *)NULL);
    curl_easy_setopt(cu, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, &k);
    /* a download may take long and be large: no overall timeout or size cap, but a stall is an
     * error */
    curl_easy_setopt(cu, CURLOPT_TIMEOUT, 0L);
    curl_easy_setopt(cu, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)0);
    curl_easy_setopt(cu, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(cu, CURLOPT_LOW_SPEED_TIME, r->timeout_s);
    CURLcode cr = curl_easy_perform(cu);
    int saved_errno = errno;
    if (k.status == 0)
        curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &k.status);
    rep->status = k.status;
    *bytes = k.bytes;
    (void)take_body(&k.err, rep, err, errlen); /* a 2xx body went to out: k.err is empty */
    if (k.write_failed)
        rc = REST_WRITE;
    else if (cr != CURLE_OK)
        rc = transfer_error(r, cr, err, errlen);
    /* back to the settings of rest_request */
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, (void *)NULL);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT, r->timeout_s);
    curl_easy_setopt(cu, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_response);
    curl_easy_setopt(cu, CURLOPT_LOW_SPEED_LIMIT, 0L);
    curl_easy_setopt(cu, CURLOPT_LOW_SPEED_TIME, 0L);
    errno = saved_errno;
    return rc;
}

const char *
rest_error_code(const struct rest_reply *rep)
{
    return json_string_value(json_object_get(rep->json, "error"));
}

const char *
rest_error_message(const struct rest_reply *rep)
{
    return json_string_value(json_object_get(rep->json, "message"));
}

int
rest_query_add(char *q, size_t qlen, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    char tmp[1024];
    size_t n = 0, len = strlen(q);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (n + 4 >= sizeof(tmp))
            return -1;
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            tmp[n++] = (char)*p;
        } else {
            tmp[n++] = '%';
            tmp[n++] = hex[*p >> 4];
            tmp[n++] = hex[*p & 15];
        }
    }
    tmp[n] = '\0';
    int w = snprintf(q + len, qlen - len, "%c%s=%s", len ? '&' : '?', key, tmp);
    if (w < 0 || (size_t)w >= qlen - len) {
        q[len] = '\0';
        return -1;
    }
    return 0;
}
