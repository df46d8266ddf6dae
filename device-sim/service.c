#include "service.h"

#include "sim.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_LIMIT 1000
#define ANSWER_MAX (16u << 20) /* a page of 1,000 reports is well under 1 MiB */
#define TIMEOUT_S 60L
#define TOKEN_MAX 512

struct answer {
    char *p;
    size_t len;
    int too_big;
};

struct client {
    CURL *curl;
    struct curl_slist *headers;
    struct answer a;
    char errbuf[CURL_ERROR_SIZE];
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static size_t
on_data(char *data, size_t size, size_t nmemb, void *arg)
{
    struct answer *a = arg;
    size_t n = size * nmemb;
    if (a->len + n > ANSWER_MAX) {
        a->too_big = 1;
        return 0;
    }
    char *p = realloc(a->p, a->len + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + a->len, data, n);
    a->p = p;
    a->len += n;
    a->p[a->len] = '\0';
    return n;
}

/* One keep-alive connection with the token's Authorization header. 0 or -1. */
static int
client_open(struct client *c, const char *cacert, const char *token)
{
    char auth[TOKEN_MAX + 32];
    int e = 0;
    memset(c, 0, sizeof(*c));
    if ((c->curl = curl_easy_init()) == NULL)
        return -1;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    c->headers = curl_slist_append(NULL, auth);
    explicit_bzero(auth, sizeof(auth));
    if (c->headers == NULL)
        return -1;
    e |= curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    e |= curl_easy_setopt(c->curl, CURLOPT_CAINFO, cacert);
    e |= curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
    e |= curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, TIMEOUT_S);
    e |= curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
    e |= curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
    e |= curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &c->a);
    e |= curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    e |= curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "https");
#else
    e |= curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
    return e == 0 ? 0 : -1;
}

static void
client_close(struct client *c)
{
    curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers); /* holds the token: libcurl's copy, freed as is */
    free(c->a.p);
}

/* GETs url; returns the parsed 200 answer (caller decrefs), or NULL with err set. */
static json_t *
get_json(struct client *c, const char *url, char *err, size_t errlen)
{
    long status = 0;
    json_t *j = NULL;
    c->a.len = 0;
    c->a.too_big = 0;
    if (c->a.p != NULL)
        c->a.p[0] = '\0'; /* an empty answer must not show the previous one */
    c->errbuf[0] = '\0';
    if (curl_easy_setopt(c->curl, CURLOPT_URL, url) != CURLE_OK) {
        seterr(err, errlen, "bad URL %s", url);
        return NULL;
    }
    CURLcode rc = curl_easy_perform(c->curl);
    if (rc != CURLE_OK) {
        seterr(err, errlen, "GET %s: %s", url,
               c->a.too_big           ? "answer too large"
               : c->errbuf[0] != '\0' ? c->errbuf
                                      : curl_easy_strerror(rc));
        return NULL;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        seterr(err, errlen, "GET %s: HTTP %ld: %.200s", url, status, c->a.p != NULL ? c->a.p : "");
        return NULL;
    }
    j = c->a.p != NULL ? json_loadb(c->a.p, c->a.len, 0, NULL) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        seterr(err, errlen, "GET %s: the answer is not a JSON object", url);
        return NULL;
    }
    return j;
}

/* Adds one device's counts: its summary's "reports", and its crash reports page by page. */
static int
count_device(struct client *c, const char *server, const char *id, struct service_count *out,
             char *err, size_t errlen)
{
    char url[1024], *cursor = NULL;
    int rc = -1, first = 1;
    for (;;) {
        char *esc = cursor != NULL ? curl_easy_escape(c->curl, cursor, 0) : NULL;
        int len =
            snprintf(url, sizeof(url), "%s/v1/devices/%s/reports?type=crash&limit=%d%s%s", server,
                     id, PAGE_LIMIT, esc != NULL ? "&cursor=" : "", esc != NULL ? esc : "");
        curl_free(esc);
        if (len < 0 || (size_t)len >= sizeof(url)) {
            seterr(err, errlen, "URL too long for device %s", id);
            goto out;
        }
        json_t *page = get_json(c, url, err, errlen);
        if (page == NULL)
            goto out;
        const json_t *items = json_object_get(page, "items");
        const json_t *next = json_object_get(page, "next_cursor");
        const json_t *reports = json_object_get(json_object_get(page, "summary"), "reports");
        if (!json_is_array(items) || (first && !json_is_integer(reports)) ||
            (!json_is_null(next) && !json_is_string(next))) {
            seterr(err, errlen, "device %s: unexpected answer (no items, summary or cursor)", id);
            json_decref(page);
            goto out;
        }
        if (first)
            out->reports += (uint64_t)json_integer_value(reports);
        first = 0;
        out->crash_reports += json_array_size(items);
        free(cursor);
        cursor = json_is_string(next) && json_string_length(next) > 0
                     ? strdup(json_string_value(next))
                     : NULL;
        json_decref(page);
        if (cursor == NULL)
            break;
    }
    rc = 0;
out:
    free(cursor);
    return rc;
}

int
service_count(const char *server, const char *cacert, const char *token, char *const *ids, size_t n,
              struct service_count *out, char *err, size_t errlen)
{
    struct client c;
    int rc = -1;
    memset(out, 0, sizeof(*out));
    if (strlen(token) > TOKEN_MAX) {
        seterr(err, errlen, "the API token is longer than %d characters", TOKEN_MAX);
        return -1;
    }
    if (client_open(&c, cacert, token) != 0) {
        seterr(err, errlen, "cannot set up an HTTPS client");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (count_device(&c, server, ids[i], out, err, errlen) != 0)
            goto out;
    rc = 0;
out:
    client_close(&c);
    return rc;
}

char *
service_token(const char *path, const char **err_path)
{
    char *t = NULL;
    *err_path = NULL;
    if (path != NULL) {
        t = sim_read_text(path, TOKEN_MAX + 2);
        if (t == NULL) {
            *err_path = path;
            return NULL;
        }
    } else {
        const char *e = getenv("AEGIS_TOKEN");
        if (e == NULL || e[0] == '\0' || (t = strdup(e)) == NULL)
            return NULL;
    }
    t[strcspn(t, "\r\n")] = '\0';
    return t;
}

void
service_token_free(char *token)
{
    if (token == NULL)
        return;
    explicit_bzero(token, strlen(token));
    free(token);
}
