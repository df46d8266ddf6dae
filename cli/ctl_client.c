/* aegisctl commands that call the REST API (docs/api.md) with libcurl: one easy handle per
 * invocation, TLS verification always on, the token only ever in the Authorization header. Request
 * bodies are built with jansson; responses are parsed strictly and printed as tables, "key: value"
 * lines, or (--json) as received. */
#include "ctl.h"

#include "auth.h"
#include "store.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define HTTP_TIMEOUT_S 30L
#define RESPONSE_MAX ((size_t)64 * 1024 * 1024)
#define IMPORT_FILE_MAX ((size_t)256 * 1024 * 1024)
#define TOKEN_FILE_MAX 4096
#define URL_MAX 4096

/* Connection state of one invocation (c->http). */
struct http {
    CURL *curl;
    struct curl_slist *hdrs;      /* Authorization, Accept, no Expect */
    struct curl_slist *hdrs_json; /* the same + Content-Type: application/json */
    char base[1024];              /* server URL without trailing slash */
    char errbuf[CURL_ERROR_SIZE];
    int global_init;
};

/* A response body being received. */
struct buf {
    char *data;
    size_t len, cap;
    int too_big;
};

static void
buf_free(struct buf *b)
{
    if (b->data != NULL) {
        sodium_memzero(b->data, b->cap); /* may hold a new token */
        free(b->data);
    }
    memset(b, 0, sizeof(*b));
}

static size_t
on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct buf *b = userdata;
    size_t n = size * nmemb;
    if (n > RESPONSE_MAX - b->len) {
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
ctl_api_cleanup(struct ctl *c)
{
    struct http *h = c->http;
    if (h == NULL)
        return;
    if (h->curl != NULL)
        curl_easy_cleanup(h->curl);
    slist_free_secret(h->hdrs);
    slist_free_secret(h->hdrs_json);
    if (h->global_init)
        curl_global_cleanup();
    free(h);
    c->http = NULL;
}

/* The API token from --token, --token-file or AEGIS_TOKEN (malloc'd, zero before freeing), or NULL
 * with the exit code in *rc. */
static char *
load_token(struct ctl *c, int *rc)
{
    char *t = NULL;
    if (c->token_arg != NULL) {
        t = strdup(c->token_arg);
    } else if (c->token_file != NULL) {
        size_t len = 0;
        t = util_read_file(c->token_file, TOKEN_FILE_MAX, &len);
        if (t == NULL) {
            ctl_err("cannot read the token file %s", c->token_file);
            *rc = CTL_EXIT_LOCAL;
            return NULL;
        }
        while (len > 0 && (t[len - 1] == '\n' || t[len - 1] == '\r' || t[len - 1] == ' ' ||
                           t[len - 1] == '\t'))
            t[--len] = '\0';
    } else {
        const char *e = getenv("AEGIS_TOKEN");
        if (e == NULL || e[0] == '\0') {
            *rc = ctl_usage_error(c, "no API token: use --token-file F, AEGIS_TOKEN or --token T");
            return NULL;
        }
        t = strdup(e);
    }
    if (t == NULL) {
        ctl_err("out of memory");
        *rc = CTL_EXIT_LOCAL;
        return NULL;
    }
    int64_t id;
    unsigned char hash[32];
    int bad = auth_token_parse(t, &id, hash) != 0;
    sodium_memzero(hash, sizeof(hash));
    if (bad) {
        sodium_memzero(t, strlen(t));
        free(t);
        *rc = ctl_usage_error(c, "the API token is malformed (expected aegis_<id>_<secret>)");
        return NULL;
    }
    return t;
}

/* Makes c->http on first use: checks the server URL, the token and the CA file, sets up curl.
 * Returns CTL_EXIT_OK or the exit code (error printed). */
static int
http_setup(struct ctl *c, struct http **out)
{
    struct http *h = NULL;
    char *token = NULL, *auth = NULL;
    char cafile[PATH_MAX];
    const char *ca = NULL;
    int rc = CTL_EXIT_LOCAL;

    if (c->http != NULL) {
        *out = c->http;
        return CTL_EXIT_OK;
    }
    /* the server */
    const char *srv = c->server;
    size_t sl = strlen(srv);
    while (sl > 0 && srv[sl - 1] == '/')
        sl--;
    if (strncasecmp(srv, "https://", 8) != 0 || sl <= 8 || sl >= sizeof(h->base))
        return ctl_usage_error(c, "--server: expected an https:// URL, got '%.64s'", srv);
    for (size_t i = 0; i < sl; i++)
        if ((unsigned char)srv[i] <= 0x20 || (unsigned char)srv[i] >= 0x7f)
            return ctl_usage_error(c, "--server: the URL contains spaces or control characters");
    /* the CA file: --cacert / AEGIS_CACERT, else <pki_dir>/root.crt when present, else the system's
     */
    if (c->cacert != NULL) {
        if (access(c->cacert, R_OK) != 0) {
            ctl_err("cannot read the CA file %s: %s", c->cacert, strerror(errno));
            return CTL_EXIT_LOCAL;
        }
        ca = c->cacert;
    } else {
        if (ctl_config(c) != 0)
            return CTL_EXIT_LOCAL;
        if (snprintf(cafile, sizeof(cafile), "%s/root.crt", c->cfg.pki_dir) < (int)sizeof(cafile) &&
            access(cafile, R_OK) == 0)
            ca = cafile;
    }
    /* the token */
    token = load_token(c, &rc);
    if (token == NULL)
        return rc;
    rc = CTL_EXIT_LOCAL;
    size_t alen = strlen("Authorization: Bearer ") + strlen(token) + 1;
    auth = malloc(alen);
    h = calloc(1, sizeof(*h));
    if (auth == NULL || h == NULL) {
        ctl_err("out of memory");
        goto out;
    }
    snprintf(auth, alen, "Authorization: Bearer %s", token);
    memcpy(h->base, srv, sl);
    h->base[sl] = '\0';

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ctl_err("cannot initialise libcurl");
        goto out;
    }
    h->global_init = 1;
    h->curl = curl_easy_init();
    if (h->curl == NULL) {
        ctl_err("cannot initialise libcurl");
        goto out;
    }
    /* Without a body no Content-Type at all (curl would add a form type to an empty POST). */
    const char *common[] = {auth, "Accept: application/json", "Expect:"};
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
        struct curl_slist *a = curl_slist_append(h->hdrs, common[i]);
        if (a == NULL)
            goto oom;
        h->hdrs = a;
        a = curl_slist_append(h->hdrs_json, common[i]);
        if (a == NULL)
            goto oom;
        h->hdrs_json = a;
    }
    struct curl_slist *a = curl_slist_append(h->hdrs_json, "Content-Type: application/json");
    if (a == NULL)
        goto oom;
    h->hdrs_json = a;
    a = curl_slist_append(h->hdrs, "Content-Type:");
    if (a == NULL)
        goto oom;
    h->hdrs = a;

    CURL *cu = h->curl;
    CURLcode e = CURLE_OK;
    e |= curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    e |= curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, h->errbuf);
    e |= curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT, HTTP_TIMEOUT_S);
    e |= curl_easy_setopt(cu, CURLOPT_TIMEOUT, HTTP_TIMEOUT_S);
    e |= curl_easy_setopt(cu, CURLOPT_SSL_VERIFYPEER, 1L);
    e |= curl_easy_setopt(cu, CURLOPT_SSL_VERIFYHOST, 2L);
    e |= curl_easy_setopt(cu, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    e |= curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "https");
#else
    e |= curl_easy_setopt(cu, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
    e |= curl_easy_setopt(cu, CURLOPT_USERAGENT, "aegisctl/" AEGIS_VERSION);
    e |= curl_easy_setopt(cu, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)RESPONSE_MAX);
    e |= curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_write);
    if (ca != NULL)
        e |= curl_easy_setopt(cu, CURLOPT_CAINFO, ca);
    if (e != CURLE_OK) {
        ctl_err("cannot configure libcurl");
        goto out;
    }
    c->http = h;
    h = NULL;
    *out = c->http;
    rc = CTL_EXIT_OK;
    goto out;
oom:
    ctl_err("out of memory");
out:
    if (h != NULL) {
        c->http = h;
        ctl_api_cleanup(c);
    }
    if (auth != NULL) {
        sodium_memzero(auth, strlen(auth));
        free(auth);
    }
    sodium_memzero(token, strlen(token));
    free(token);
    return rc;
}

/* Prints an API error reply to stderr: "error: <code>: <message>" and any "errors" entries as
 * "<index>: <error>: <message>". With --json the reply also goes to stdout as received. */
static void
print_api_error(struct ctl *c, long status, const struct buf *b)
{
    json_error_t jerr;
    json_t *e = b->len > 0 ? json_loadb(b->data, b->len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    const char *code = json_string_value(json_object_get(e, "error"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (code == NULL) {
        char text[201];
        snprintf(text, sizeof(text), "%s", b->len > 0 ? b->data : "(no body)");
        ctl_sanitize(text);
        ctl_err("http_%ld: %s", status, text);
        goto out;
    }
    char *safe_code = strdup(code), *safe = strdup(msg != NULL ? msg : "(no message)");
    if (safe_code != NULL)
        ctl_sanitize(safe_code);
    if (safe != NULL)
        ctl_sanitize(safe);
    ctl_err("%s: %s", safe_code != NULL ? safe_code : "error",
            safe != NULL ? safe : "(no message)");
    free(safe_code);
    free(safe);
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(e, "errors"), i, it)
    {
        json_t *idx = json_object_get(it, "index");
        char *ec = strdup(json_string_value(json_object_get(it, "error")) != NULL
                              ? json_string_value(json_object_get(it, "error"))
                              : "?");
        char *em = strdup(json_string_value(json_object_get(it, "message")) != NULL
                              ? json_string_value(json_object_get(it, "message"))
                              : "");
        if (ec != NULL)
            ctl_sanitize(ec);
        if (em != NULL)
            ctl_sanitize(em);
        fprintf(stderr, "%lld: %s: %s\n",
                json_is_integer(idx) ? (long long)json_integer_value(idx) : -1LL,
                ec != NULL ? ec : "?", em != NULL ? em : "");
        free(ec);
        free(em);
    }
    if (c->json)
        ctl_print_json(e);
out:
    json_decref(e);
}

/* One request. body (may be NULL) is sent as JSON. On 2xx *out (may be NULL) gets the parsed reply,
 * or NULL for an empty one (204). Returns an exit code: OK, API (HTTP >= 400 or an unusable reply,
 * printed), CONN, USAGE or LOCAL (setup). */
static int
request(struct ctl *c, const char *method, const char *path, const json_t *body, json_t **out)
{
    struct http *h = NULL;
    struct buf b = {NULL, 0, 0, 0};
    char *text = NULL;
    char url[URL_MAX];
    long status = 0;
    int rc;

    if (out != NULL)
        *out = NULL;
    rc = http_setup(c, &h);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = CTL_EXIT_LOCAL;
    if (snprintf(url, sizeof(url), "%s%s", h->base, path) >= (int)sizeof(url)) {
        ctl_err("request URL too long");
        goto out;
    }
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        if (text == NULL) {
            ctl_err("cannot encode the request body");
            goto out;
        }
    }
    CURL *cu = h->curl;
    h->errbuf[0] = '\0';
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, (char *)NULL);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, text != NULL ? h->hdrs_json : h->hdrs);
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
    if (b.too_big || cr == CURLE_FILESIZE_EXCEEDED) {
        ctl_err("bad_response: the response is larger than %zu MiB", RESPONSE_MAX >> 20);
        rc = CTL_EXIT_API;
        goto out;
    }
    if (cr != CURLE_OK) {
        ctl_err("cannot talk to %s: %s%s", h->base,
                h->errbuf[0] ? h->errbuf : curl_easy_strerror(cr),
                cr == CURLE_PEER_FAILED_VERIFICATION || cr == CURLE_SSL_CACERT_BADFILE
                    ? " (check --cacert)"
                    : "");
        rc = CTL_EXIT_CONN;
        goto out;
    }
    curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 400) {
        print_api_error(c, status, &b);
        rc = CTL_EXIT_API;
        goto out;
    }
    if (status < 200 || status > 299) {
        ctl_err("bad_response: unexpected HTTP status %ld", status);
        rc = CTL_EXIT_API;
        goto out;
    }
    if (b.len > 0 && out != NULL) {
        json_error_t jerr;
        *out = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &jerr);
        if (*out == NULL) {
            ctl_err("bad_response: the server sent invalid JSON (HTTP %ld): %s", status, jerr.text);
            rc = CTL_EXIT_API;
            goto out;
        }
    }
    rc = CTL_EXIT_OK;
out:
    if (h != NULL)
        curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, (void *)NULL);
    free(text);
    buf_free(&b);
    return rc;
}

/* A request whose reply must be a JSON object. */
static int
request_object(struct ctl *c, const char *method, const char *path, const json_t *body,
               json_t **out)
{
    int rc = request(c, method, path, body, out);
    if (rc == CTL_EXIT_OK && !json_is_object(*out)) {
        ctl_err("bad_response: expected a JSON object");
        json_decref(*out);
        *out = NULL;
        rc = CTL_EXIT_API;
    }
    return rc;
}

/* Sends the request and prints the object it answers (key: value, or as received with --json). */
static int
show(struct ctl *c, const char *method, const char *path, const json_t *body)
{
    json_t *o = NULL;
    int rc = request_object(c, method, path, body, &o);
    if (rc == CTL_EXIT_OK) {
        if (c->json)
            ctl_print_json(o);
        else
            ctl_print_object(o);
    }
    json_decref(o);
    return rc;
}

/* DELETE that answers 204; prints done (text mode). */
static int
delete_and_say(struct ctl *c, const char *path, const char *done)
{
    int rc = request(c, "DELETE", path, NULL, NULL);
    if (rc == CTL_EXIT_OK && !c->json)
        printf("%s\n", done);
    return rc;
}

/* --- query strings --- */

struct query {
    char s[2048];
    size_t len;
    int bad; /* too long */
};

/* Appends "?key=value" or "&key=value", percent-encoding value. */
static void
query_add(struct query *q, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    char tmp[1024];
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (n + 4 >= sizeof(tmp)) {
            q->bad = 1;
            return;
        }
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
    int w = snprintf(q->s + q->len, sizeof(q->s) - q->len, "%c%s=%s", q->len ? '&' : '?', key, tmp);
    if (w < 0 || (size_t)w >= sizeof(q->s) - q->len) {
        q->bad = 1;
        return;
    }
    q->len += (size_t)w;
}

static void
query_add_i64(struct query *q, const char *key, int64_t v)
{
    char num[32];
    snprintf(num, sizeof(num), "%lld", (long long)v);
    query_add(q, key, num);
}

/* --- lists --- */

/* Fetches path (+ q, limit, cursor) and, with all, every following page. *result gets the page as
 * received, or with all {"items": [every item], "next_cursor": null}. */
static int
fetch_list(struct ctl *c, const char *path, const struct query *q, int64_t limit,
           const char *cursor, int all, json_t **result)
{
    json_t *acc = NULL, *page = NULL;
    char *cur = NULL;
    int rc = CTL_EXIT_LOCAL;
    *result = NULL;
    if (cursor != NULL && (cur = strdup(cursor)) == NULL)
        goto oom;
    if (all && (acc = json_array()) == NULL)
        goto oom;
    for (;;) {
        struct query pq = *q;
        char full[URL_MAX];
        if (limit > 0)
            query_add_i64(&pq, "limit", limit);
        if (cur != NULL)
            query_add(&pq, "cursor", cur);
        if (pq.bad || snprintf(full, sizeof(full), "%s%s", path, pq.s) >= (int)sizeof(full)) {
            ctl_err("request URL too long");
            goto out;
        }
        rc = request_object(c, "GET", full, NULL, &page);
        if (rc != CTL_EXIT_OK)
            goto out;
        json_t *items = json_object_get(page, "items");
        json_t *next = json_object_get(page, "next_cursor");
        if (!json_is_array(items) || !(json_is_null(next) || json_is_string(next))) {
            ctl_err("bad_response: expected {\"items\": [...], \"next_cursor\": ...}");
            rc = CTL_EXIT_API;
            goto out;
        }
        if (!all) {
            *result = page;
            page = NULL;
            break;
        }
        if (json_array_extend(acc, items) != 0)
            goto oom;
        if (json_is_null(next) || json_string_length(next) == 0)
            break;
        if (cur != NULL && strcmp(cur, json_string_value(next)) == 0) {
            ctl_err("bad_response: the server repeated a cursor");
            rc = CTL_EXIT_API;
            goto out;
        }
        free(cur);
        cur = strdup(json_string_value(next));
        if (cur == NULL)
            goto oom;
        json_decref(page);
        page = NULL;
    }
    if (all) {
        *result = json_pack("{s:O, s:n}", "items", acc, "next_cursor");
        if (*result == NULL)
            goto oom;
    }
    rc = CTL_EXIT_OK;
    goto out;
oom:
    ctl_err("out of memory");
    rc = CTL_EXIT_LOCAL;
out:
    json_decref(page);
    json_decref(acc);
    free(cur);
    return rc;
}

/* Fetches and prints a list as a table (or JSON). */
static int
list_and_print(struct ctl *c, const char *path, const struct query *q, int64_t limit,
               const char *cursor, int all, const struct ctl_col *cols)
{
    json_t *res = NULL;
    int rc = fetch_list(c, path, q, limit, cursor, all, &res);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (c->json) {
        ctl_print_json(res);
    } else {
        ctl_print_table(json_object_get(res, "items"), cols);
        const char *next = json_string_value(json_object_get(res, "next_cursor"));
        if (next != NULL && next[0] != '\0') {
            char safe[256];
            snprintf(safe, sizeof(safe), "%s", next);
            for (char *p = safe; *p; p++)
                if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
                    *p = '?';
            fflush(stdout);
            fprintf(stderr, "(more: --cursor %s, or --all)\n", safe);
        }
    }
    json_decref(res);
    return CTL_EXIT_OK;
}

/* --- argument helpers --- */

static int
parse_id(struct ctl *c, const char *what, const char *s, int64_t *out)
{
    return ctl_int(c, what, s, 1, INT64_MAX, out);
}

/* A device ID: 64 hex characters, normalised to lower case into out. */
static int
parse_device_id(struct ctl *c, const char *s, char out[65])
{
    size_t n = strlen(s);
    if (n != 64) {
        ctl_usage_error(c, "ID: a device ID is 64 hex characters");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch >= 'A' && ch <= 'F')
            ch = (char)(ch - 'A' + 'a');
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            ctl_usage_error(c, "ID: a device ID is 64 hex characters");
            return -1;
        }
        out[i] = ch;
    }
    out[64] = '\0';
    return 0;
}

static int
parse_limit(struct ctl *c, const char *s, int64_t *out)
{
    *out = 0;
    return s == NULL ? 0 : ctl_int(c, "--limit", s, 1, 1000, out);
}

/* Sets obj[key] to the string s; a usage error if s is not valid UTF-8. */
static int
set_str(struct ctl *c, json_t *obj, const char *what, const char *key, const char *s)
{
    json_t *v = json_string(s);
    if (v == NULL) {
        ctl_usage_error(c, "%s: not valid UTF-8", what);
        return -1;
    }
    if (json_object_set_new(obj, key, v) != 0) {
        ctl_err("out of memory");
        return -1;
    }
    return 0;
}

static int
set_int(json_t *obj, const char *key, int64_t v)
{
    if (json_object_set_new(obj, key, json_integer((json_int_t)v)) != 0) {
        ctl_err("out of memory");
        return -1;
    }
    return 0;
}

/* Parses exactly one positional ID plus opts. Returns 0, or the exit code to return (> 0 or usage).
 */
static int
args_with_id(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts, int64_t *id,
             int *exit_code)
{
    const char *pos[1] = {NULL};
    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0) {
        *exit_code = ctl_parse_exit(pr);
        return -1;
    }
    if (parse_id(c, "ID", pos[0], id) != 0) {
        *exit_code = CTL_EXIT_USAGE;
        return -1;
    }
    return 0;
}

/* --- tenant --- */

int
ctl_tenant_show(struct ctl *c, int argc, char **argv)
{
    int pr = ctl_parse(c, argc, argv, NULL, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    return show(c, "GET", "/v1/tenant", NULL);
}

/* --- tokens --- */

int
ctl_tokens_create(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const char *role = NULL;
    const struct ctl_opt opts[] = {{"--role", CTL_OPT_STR, &role, NULL}, {NULL, 0, NULL, NULL}};
    json_t *body = NULL, *o = NULL;
    int rc = CTL_EXIT_LOCAL;

    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (role == NULL)
        return ctl_usage_error(c, "--role is required");
    if (auth_role_parse(role) == ROLE_NONE)
        return ctl_usage_error(c, "--role: expected admin, operator or reader");
    if (pos[0][0] == '\0' || strlen(pos[0]) > 128)
        return ctl_usage_error(c, "NAME: 1-128 bytes");
    body = json_object();
    if (body == NULL) {
        ctl_err("out of memory");
        goto out;
    }
    if (set_str(c, body, "NAME", "name", pos[0]) != 0 ||
        set_str(c, body, "--role", "role", role) != 0) {
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    rc = request_object(c, "POST", "/v1/tokens", body, &o);
    if (rc != CTL_EXIT_OK)
        goto out;
    json_t *tok = json_object_get(o, "token");
    if (c->json) {
        ctl_print_json(o);
    } else {
        json_t *copy = json_copy(o);
        if (copy == NULL) {
            ctl_err("out of memory");
            rc = CTL_EXIT_LOCAL;
            goto out;
        }
        json_object_del(copy, "token");
        ctl_print_object(copy);
        json_decref(copy);
        if (json_is_string(tok))
            printf("token (shown once): %s\n", json_string_value(tok));
    }
    if (!json_is_string(tok)) {
        ctl_err("bad_response: no token in the reply");
        rc = CTL_EXIT_API;
    }
out:
    ctl_json_forget(o, "token");
    json_decref(o);
    json_decref(body);
    return rc;
}

int
ctl_tokens_list(struct ctl *c, int argc, char **argv)
{
    static const struct ctl_col cols[] = {{"ID", "id", 0},
                                          {"NAME", "name", 40},
                                          {"ROLE", "role", 0},
                                          {"CREATED_AT", "created_at", 0},
                                          {"CREATED_BY", "created_by", 0},
                                          {"REVOKED_AT", "revoked_at", 0},
                                          {NULL, NULL, 0}};
    struct query q = {{0}, 0, 0};
    int pr = ctl_parse(c, argc, argv, NULL, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    return list_and_print(c, "/v1/tokens", &q, 0, NULL, 1, cols);
}

int
ctl_tokens_revoke(struct ctl *c, int argc, char **argv)
{
    int64_t id;
    int ec;
    char path[64], done[64];
    if (args_with_id(c, argc, argv, NULL, &id, &ec) != 0)
        return ec;
    snprintf(path, sizeof(path), "/v1/tokens/%lld", (long long)id);
    snprintf(done, sizeof(done), "token %lld revoked", (long long)id);
    return delete_and_say(c, path, done);
}

/* --- products and device groups --- */

static const struct ctl_col product_cols[] = {{"ID", "id", 0},
                                              {"NAME", "name", 40},
                                              {"CREATED_AT", "created_at", 0},
                                              {"UPDATED_AT", "updated_at", 0},
                                              {"DESCRIPTION", "description", 50},
                                              {NULL, NULL, 0}};

static const struct ctl_col group_cols[] = {{"ID", "id", 0},
                                            {"PRODUCT_ID", "product_id", 0},
                                            {"NAME", "name", 40},
                                            {"CREATED_AT", "created_at", 0},
                                            {"DESCRIPTION", "description", 50},
                                            {NULL, NULL, 0}};

int
ctl_products_create(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const char *desc = NULL;
    const struct ctl_opt opts[] = {{"--description", CTL_OPT_STR, &desc, NULL},
                                   {NULL, 0, NULL, NULL}};
    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    json_t *body = json_object();
    int rc = CTL_EXIT_USAGE;
    if (body == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    if (set_str(c, body, "NAME", "name", pos[0]) != 0 ||
        (desc != NULL && set_str(c, body, "--description", "description", desc) != 0))
        goto out;
    rc = show(c, "POST", "/v1/products", body);
out:
    json_decref(body);
    return rc;
}

int
ctl_products_list(struct ctl *c, int argc, char **argv)
{
    struct query q = {{0}, 0, 0};
    int pr = ctl_parse(c, argc, argv, NULL, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    return list_and_print(c, "/v1/products", &q, 0, NULL, 1, product_cols);
}

/* GET <base>/<id>. */
static int
show_by_id(struct ctl *c, int argc, char **argv, const char *base)
{
    int64_t id;
    int ec;
    char path[96];
    if (args_with_id(c, argc, argv, NULL, &id, &ec) != 0)
        return ec;
    snprintf(path, sizeof(path), "%s/%lld", base, (long long)id);
    return show(c, "GET", path, NULL);
}

/* PATCH <base>/<id> {"name"?, "description"?}. */
static int
update_by_id(struct ctl *c, int argc, char **argv, const char *base)
{
    const char *name = NULL, *desc = NULL;
    const struct ctl_opt opts[] = {{"--name", CTL_OPT_STR, &name, NULL},
                                   {"--description", CTL_OPT_STR, &desc, NULL},
                                   {NULL, 0, NULL, NULL}};
    int64_t id;
    int ec, rc = CTL_EXIT_USAGE;
    char path[96];
    if (args_with_id(c, argc, argv, opts, &id, &ec) != 0)
        return ec;
    if (name == NULL && desc == NULL)
        return ctl_usage_error(c, "nothing to change: give --name and/or --description");
    json_t *body = json_object();
    if (body == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    if ((name != NULL && set_str(c, body, "--name", "name", name) != 0) ||
        (desc != NULL && set_str(c, body, "--description", "description", desc) != 0))
        goto out;
    snprintf(path, sizeof(path), "%s/%lld", base, (long long)id);
    rc = show(c, "PATCH", path, body);
out:
    json_decref(body);
    return rc;
}

/* DELETE <base>/<id>. */
static int
delete_by_id(struct ctl *c, int argc, char **argv, const char *base, const char *what)
{
    int64_t id;
    int ec;
    char path[96], done[96];
    if (args_with_id(c, argc, argv, NULL, &id, &ec) != 0)
        return ec;
    snprintf(path, sizeof(path), "%s/%lld", base, (long long)id);
    snprintf(done, sizeof(done), "%s %lld deleted", what, (long long)id);
    return delete_and_say(c, path, done);
}

int
ctl_products_show(struct ctl *c, int argc, char **argv)
{
    return show_by_id(c, argc, argv, "/v1/products");
}

int
ctl_products_update(struct ctl *c, int argc, char **argv)
{
    return update_by_id(c, argc, argv, "/v1/products");
}

int
ctl_products_delete(struct ctl *c, int argc, char **argv)
{
    return delete_by_id(c, argc, argv, "/v1/products", "product");
}

int
ctl_groups_create(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const char *desc = NULL, *product = NULL;
    const struct ctl_opt opts[] = {{"--product", CTL_OPT_STR, &product, NULL},
                                   {"--description", CTL_OPT_STR, &desc, NULL},
                                   {NULL, 0, NULL, NULL}};
    int64_t pid;
    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (product == NULL)
        return ctl_usage_error(c, "--product is required");
    if (parse_id(c, "--product", product, &pid) != 0)
        return CTL_EXIT_USAGE;
    json_t *body = json_object();
    int rc = CTL_EXIT_USAGE;
    if (body == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    if (set_int(body, "product_id", pid) != 0 || set_str(c, body, "NAME", "name", pos[0]) != 0 ||
        (desc != NULL && set_str(c, body, "--description", "description", desc) != 0))
        goto out;
    rc = show(c, "POST", "/v1/device-groups", body);
out:
    json_decref(body);
    return rc;
}

int
ctl_groups_list(struct ctl *c, int argc, char **argv)
{
    const char *product = NULL;
    const struct ctl_opt opts[] = {{"--product", CTL_OPT_STR, &product, NULL},
                                   {NULL, 0, NULL, NULL}};
    struct query q = {{0}, 0, 0};
    int64_t pid;
    int pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (product != NULL) {
        if (parse_id(c, "--product", product, &pid) != 0)
            return CTL_EXIT_USAGE;
        query_add_i64(&q, "product_id", pid);
    }
    return list_and_print(c, "/v1/device-groups", &q, 0, NULL, 1, group_cols);
}

int
ctl_groups_show(struct ctl *c, int argc, char **argv)
{
    return show_by_id(c, argc, argv, "/v1/device-groups");
}

int
ctl_groups_update(struct ctl *c, int argc, char **argv)
{
    return update_by_id(c, argc, argv, "/v1/device-groups");
}

int
ctl_groups_delete(struct ctl *c, int argc, char **argv)
{
    return delete_by_id(c, argc, argv, "/v1/device-groups", "group");
}

/* --- devices --- */

/* Appends {"public_key": pem} to devices. */
static int
append_entry(json_t *devices, json_t *pem)
{
    json_t *o = json_pack("{s:O}", "public_key", pem);
    if (o == NULL)
        return -1;
    return json_array_append_new(devices, o);
}

/* Turns the import file's JSON into the API body. Returns 0, or -1 with "file: reason" printed. */
static int
import_body(const char *file, json_t *doc, json_t **body)
{
    json_t *devices = NULL;
    *body = NULL;
    if (json_is_object(doc)) {
        /* already the API body: {"devices": [...], "claim"?, "group_id"?} */
        const char *key;
        json_t *v;
        json_object_foreach(doc, key, v)
        {
            if (strcmp(key, "devices") != 0 && strcmp(key, "claim") != 0 &&
                strcmp(key, "group_id") != 0) {
                ctl_err("%s: unknown key '%.64s' (expected devices, claim, group_id)", file, key);
                return -1;
            }
        }
        json_t *claim = json_object_get(doc, "claim");
        json_t *gid = json_object_get(doc, "group_id");
        if (!json_is_array(json_object_get(doc, "devices"))) {
            ctl_err("%s: \"devices\" must be an array", file);
            return -1;
        }
        if (claim != NULL && !json_is_boolean(claim)) {
            ctl_err("%s: \"claim\" must be true or false", file);
            return -1;
        }
        if (gid != NULL && !json_is_null(gid) &&
            !(json_is_integer(gid) && json_integer_value(gid) > 0)) {
            ctl_err("%s: \"group_id\" must be a positive integer", file);
            return -1;
        }
        *body = json_deep_copy(doc);
    } else if (json_is_array(doc)) {
        /* [PEM, ...] or [{"public_key": PEM}, ...] */
        size_t i;
        json_t *e;
        devices = json_array();
        if (devices == NULL)
            goto oom;
        json_array_foreach(doc, i, e)
        {
            json_t *pem = NULL;
            if (json_is_string(e)) {
                pem = e;
            } else if (json_is_object(e) && json_object_size(e) == 1 &&
                       json_is_string(json_object_get(e, "public_key"))) {
                pem = json_object_get(e, "public_key");
            } else {
                ctl_err("%s: entry %zu: expected a PEM string or {\"public_key\": PEM}", file, i);
                json_decref(devices);
                return -1;
            }
            if (append_entry(devices, pem) != 0)
                goto oom;
        }
        *body = json_pack("{s:o}", "devices", devices);
        devices = NULL;
    } else {
        ctl_err("%s: expected a JSON array of public keys or an object {\"devices\": [...]}", file);
        return -1;
    }
    if (*body == NULL)
        goto oom;
    if (json_array_size(json_object_get(*body, "devices")) == 0) {
        ctl_err("%s: no devices in the file", file);
        json_decref(*body);
        *body = NULL;
        return -1;
    }
    return 0;
oom:
    json_decref(devices);
    ctl_err("out of memory");
    return -1;
}

int
ctl_devices_import(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const char *group = NULL;
    int no_claim = 0;
    const struct ctl_opt opts[] = {{"--no-claim", CTL_OPT_FLAG, NULL, &no_claim},
                                   {"--group", CTL_OPT_STR, &group, NULL},
                                   {NULL, 0, NULL, NULL}};
    json_t *doc = NULL, *body = NULL, *o = NULL;
    char *text = NULL;
    size_t len = 0;
    int64_t gid = 0;
    int rc;

    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (group != NULL && parse_id(c, "--group", group, &gid) != 0)
        return CTL_EXIT_USAGE;
    if (group != NULL && no_claim)
        return ctl_usage_error(c, "--group needs the devices claimed (drop --no-claim)");

    rc = CTL_EXIT_LOCAL;
    text = util_read_file(pos[0], IMPORT_FILE_MAX, &len);
    if (text == NULL) {
        ctl_err("cannot read %s (missing, not a regular file, or larger than %zu MiB)", pos[0],
                IMPORT_FILE_MAX >> 20);
        goto out;
    }
    json_error_t jerr;
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        ctl_err("%s:%d:%d: %s", pos[0], jerr.line, jerr.column, jerr.text);
        goto out;
    }
    free(text);
    text = NULL;
    if (import_body(pos[0], doc, &body) != 0)
        goto out;
    json_decref(doc);
    doc = NULL;
    /* flags win over the file's own claim / group_id */
    if (no_claim && json_object_set_new(body, "claim", json_false()) != 0)
        goto oom;
    if (json_object_get(body, "claim") == NULL &&
        json_object_set_new(body, "claim", json_true()) != 0)
        goto oom;
    if (group != NULL && set_int(body, "group_id", gid) != 0)
        goto out;
    if (no_claim)
        json_object_del(body, "group_id");
    if (group != NULL && json_is_false(json_object_get(body, "claim"))) {
        rc = ctl_usage_error(c, "--group needs the devices claimed (%s has \"claim\": false)",
                             pos[0]);
        goto out;
    }

    rc = request_object(c, "POST", "/v1/devices/import", body, &o);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (c->json) {
        ctl_print_json(o);
    } else {
        json_t *imp = json_object_get(o, "imported"), *cre = json_object_get(o, "created");
        if (!json_is_integer(imp) || !json_is_integer(cre)) {
            ctl_err("bad_response: expected \"imported\" and \"created\" counts");
            rc = CTL_EXIT_API;
            goto out;
        }
        printf("imported %lld devices (%lld new)\n", (long long)json_integer_value(imp),
               (long long)json_integer_value(cre));
    }
    goto out;
oom:
    ctl_err("out of memory");
    rc = CTL_EXIT_LOCAL;
out:
    free(text);
    json_decref(doc);
    json_decref(body);
    json_decref(o);
    return rc;
}

int
ctl_devices_list(struct ctl *c, int argc, char **argv)
{
    static const struct ctl_col cols[] = {{"ID", "id", 0},
                                          {"STATE", "state", 0},
                                          {"GROUP_ID", "group_id", 0},
                                          {"PRODUCT_ID", "product_id", 0},
                                          {"CLAIMED_AT", "claimed_at", 0},
                                          {NULL, NULL, 0}};
    const char *group = NULL, *state = NULL, *limit_s = NULL, *cursor = NULL;
    int all = 0;
    const struct ctl_opt opts[] = {
        {"--group", CTL_OPT_STR, &group, NULL},   {"--state", CTL_OPT_STR, &state, NULL},
        {"--limit", CTL_OPT_STR, &limit_s, NULL}, {"--cursor", CTL_OPT_STR, &cursor, NULL},
        {"--all", CTL_OPT_FLAG, NULL, &all},      {NULL, 0, NULL, NULL}};
    struct query q = {{0}, 0, 0};
    int64_t gid, limit;
    int pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (parse_limit(c, limit_s, &limit) != 0)
        return CTL_EXIT_USAGE;
    if (group != NULL) {
        if (parse_id(c, "--group", group, &gid) != 0)
            return CTL_EXIT_USAGE;
        query_add_i64(&q, "group_id", gid);
    }
    if (state != NULL) {
        if (strcmp(state, "unclaimed") != 0 && strcmp(state, "active") != 0 &&
            strcmp(state, "blocked") != 0)
            return ctl_usage_error(c, "--state: expected unclaimed, active or blocked");
        query_add(&q, "state", state);
    }
    if (cursor != NULL && (cursor[0] == '\0' || strlen(cursor) > 128))
        return ctl_usage_error(c, "--cursor: 1-128 bytes");
    return list_and_print(c, "/v1/devices", &q, limit, cursor, all, cols);
}

/* Parses "ID [opts]" for a device command into path "/v1/devices/<id><suffix>". */
static int
device_args(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts, const char *suffix,
            char *path, size_t pathlen, int *exit_code)
{
    const char *pos[1] = {NULL};
    char id[65];
    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0) {
        *exit_code = ctl_parse_exit(pr);
        return -1;
    }
    if (parse_device_id(c, pos[0], id) != 0) {
        *exit_code = CTL_EXIT_USAGE;
        return -1;
    }
    snprintf(path, pathlen, "/v1/devices/%s%s", id, suffix);
    return 0;
}

int
ctl_devices_show(struct ctl *c, int argc, char **argv)
{
    char path[128];
    int ec;
    if (device_args(c, argc, argv, NULL, "", path, sizeof(path), &ec) != 0)
        return ec;
    return show(c, "GET", path, NULL);
}

int
ctl_devices_claim(struct ctl *c, int argc, char **argv)
{
    const char *group = NULL;
    const struct ctl_opt opts[] = {{"--group", CTL_OPT_STR, &group, NULL}, {NULL, 0, NULL, NULL}};
    char path[128];
    int64_t gid;
    int ec;
    if (device_args(c, argc, argv, opts, "/claim", path, sizeof(path), &ec) != 0)
        return ec;
    if (group == NULL)
        return show(c, "POST", path, NULL); /* the body is optional */
    if (parse_id(c, "--group", group, &gid) != 0)
        return CTL_EXIT_USAGE;
    json_t *body = json_pack("{s:I}", "group_id", (json_int_t)gid);
    if (body == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    int rc = show(c, "POST", path, body);
    json_decref(body);
    return rc;
}

int
ctl_devices_move(struct ctl *c, int argc, char **argv)
{
    const char *group = NULL;
    const struct ctl_opt opts[] = {{"--group", CTL_OPT_STR, &group, NULL}, {NULL, 0, NULL, NULL}};
    char path[128];
    int64_t gid = 0;
    int ec;
    if (device_args(c, argc, argv, opts, "", path, sizeof(path), &ec) != 0)
        return ec;
    if (group == NULL)
        return ctl_usage_error(c, "--group is required (a group ID, or none)");
    if (strcmp(group, "none") != 0 && parse_id(c, "--group", group, &gid) != 0)
        return CTL_EXIT_USAGE;
    json_t *body =
        gid > 0 ? json_pack("{s:I}", "group_id", (json_int_t)gid) : json_pack("{s:n}", "group_id");
    if (body == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    int rc = show(c, "PATCH", path, body);
    json_decref(body);
    return rc;
}

int
ctl_devices_block(struct ctl *c, int argc, char **argv)
{
    char path[128];
    int ec;
    if (device_args(c, argc, argv, NULL, "/block", path, sizeof(path), &ec) != 0)
        return ec;
    return show(c, "POST", path, NULL);
}

int
ctl_devices_unblock(struct ctl *c, int argc, char **argv)
{
    char path[128];
    int ec;
    if (device_args(c, argc, argv, NULL, "/unblock", path, sizeof(path), &ec) != 0)
        return ec;
    return show(c, "POST", path, NULL);
}

/* --- audit --- */

int
ctl_audit_list(struct ctl *c, int argc, char **argv)
{
    static const struct ctl_col cols[] = {{"ID", "id", 0},
                                          {"CREATED_AT", "created_at", 0},
                                          {"ACTOR", "actor", 0},
                                          {"ACTION", "action", 0},
                                          {"OBJECT_TYPE", "object_type", 0},
                                          {"OBJECT_ID", "object_id", 0},
                                          {"DETAIL", "detail", 60},
                                          {NULL, NULL, 0}};
    const char *limit_s = NULL, *cursor = NULL;
    int all = 0;
    const struct ctl_opt opts[] = {{"--limit", CTL_OPT_STR, &limit_s, NULL},
                                   {"--cursor", CTL_OPT_STR, &cursor, NULL},
                                   {"--all", CTL_OPT_FLAG, NULL, &all},
                                   {NULL, 0, NULL, NULL}};
    struct query q = {{0}, 0, 0};
    int64_t limit;
    int pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (parse_limit(c, limit_s, &limit) != 0)
        return CTL_EXIT_USAGE;
    if (cursor != NULL && (cursor[0] == '\0' || strlen(cursor) > 128))
        return ctl_usage_error(c, "--cursor: 1-128 bytes");
    return list_and_print(c, "/v1/audit", &q, limit, cursor, all, cols);
}

/* --- attestation: reference values, security minimums, attempts --- */

static int
component_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int
version_ok(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (n == 32 || (unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e)
            return 0;
    return n >= 1;
}

/* A SHA-256 digest: 64 hex characters, lower-cased into out. */
static int
parse_digest(struct ctl *c, const char *s, char out[65])
{
    size_t n = strlen(s);
    if (n != 64 || strspn(s, "0123456789abcdefABCDEF") != 64) {
        ctl_usage_error(c, "--digest: expected 64 hex characters (SHA-256 of the image)");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
    out[64] = '\0';
    return 0;
}

int
ctl_refvals_list(struct ctl *c, int argc, char **argv)
{
    struct query q = {{0}, 0, 0};
    int pr = ctl_parse(c, argc, argv, NULL, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (ctl_local_mode(c))
        return ctl_refvals_list_local(c);
    return list_and_print(c, "/v1/reference-values", &q, 0, NULL, 1, ctl_refval_cols);
}

int
ctl_refvals_add(struct ctl *c, int argc, char **argv)
{
    const char *stage = NULL, *component = NULL, *version = NULL, *svn_s = NULL, *digest_s = NULL;
    const struct ctl_opt opts[] = {
        {"--stage", CTL_OPT_STR, &stage, NULL},     {"--component", CTL_OPT_STR, &component, NULL},
        {"--version", CTL_OPT_STR, &version, NULL}, {"--svn", CTL_OPT_STR, &svn_s, NULL},
        {"--digest", CTL_OPT_STR, &digest_s, NULL}, {NULL, 0, NULL, NULL}};
    char digest[65];
    int64_t svn;
    int pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (stage == NULL || component == NULL || version == NULL || svn_s == NULL || digest_s == NULL)
        return ctl_usage_error(c, "--stage, --component, --version, --svn and --digest are "
                                  "required");
    if (strcmp(stage, "bootloader") != 0 && strcmp(stage, "os") != 0 && strcmp(stage, "app") != 0)
        return ctl_usage_error(c, "--stage: expected bootloader, os or app");
    if (!component_ok(component))
        return ctl_usage_error(c, "--component: 1-64 characters of [a-z0-9._-]");
    if (!version_ok(version))
        return ctl_usage_error(c, "--version: 1-32 printable ASCII characters, no spaces");
    if (ctl_int(c, "--svn", svn_s, 0, STORE_SVN_MAX, &svn) != 0 ||
        parse_digest(c, digest_s, digest) != 0)
        return CTL_EXIT_USAGE;
    if (strcmp(stage, "app") != 0) {
        struct store_measurement m = {stage, component, version, svn, digest};
        return ctl_refvals_add_local(c, &m);
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:I, s:s}", "stage", stage, "component", component,
                             "version", version, "svn", (json_int_t)svn, "digest", digest);
    if (body == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    int rc = show(c, "POST", "/v1/reference-values", body);
    json_decref(body);
    return rc;
}

int
ctl_refvals_remove(struct ctl *c, int argc, char **argv)
{
    int64_t id;
    int ec;
    char path[64], done[80];
    if (args_with_id(c, argc, argv, NULL, &id, &ec) != 0)
        return ec;
    if (ctl_local_mode(c))
        return ctl_refvals_remove_local(c, id);
    snprintf(path, sizeof(path), "/v1/reference-values/%lld", (long long)id);
    snprintf(done, sizeof(done), "reference value %lld removed", (long long)id);
    return delete_and_say(c, path, done);
}

int
ctl_minimums_list(struct ctl *c, int argc, char **argv)
{
    static const struct ctl_col cols[] = {{"COMPONENT", "component", 0},
                                          {"MIN_SVN", "min_svn", 0},
                                          {"UPDATED_AT", "updated_at", 0},
                                          {NULL, NULL, 0}};
    struct query q = {{0}, 0, 0};
    int pr = ctl_parse(c, argc, argv, NULL, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    return list_and_print(c, "/v1/security-minimums", &q, 0, NULL, 1, cols);
}

int
ctl_minimums_set(struct ctl *c, int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    char path[128];
    int64_t min;
    int pr = ctl_parse(c, argc, argv, NULL, pos, 2, 2, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (!component_ok(pos[0]))
        return ctl_usage_error(c, "COMPONENT: 1-64 characters of [a-z0-9._-]");
    if (ctl_int(c, "N", pos[1], 0, STORE_SVN_MAX, &min) != 0)
        return CTL_EXIT_USAGE;
    json_t *body = json_pack("{s:I}", "min_svn", (json_int_t)min);
    if (body == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    snprintf(path, sizeof(path), "/v1/security-minimums/%s", pos[0]);
    int rc = show(c, "PUT", path, body);
    json_decref(body);
    return rc;
}

int
ctl_minimums_remove(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    char path[128], done[128];
    int pr = ctl_parse(c, argc, argv, NULL, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (!component_ok(pos[0]))
        return ctl_usage_error(c, "COMPONENT: 1-64 characters of [a-z0-9._-]");
    snprintf(path, sizeof(path), "/v1/security-minimums/%s", pos[0]);
    snprintf(done, sizeof(done), "minimum of %s removed", pos[0]);
    return delete_and_say(c, path, done);
}

int
ctl_attestations_list(struct ctl *c, int argc, char **argv)
{
    static const struct ctl_col cols[] = {
        {"ID", "id", 0},         {"CREATED_AT", "created_at", 0}, {"DEVICE_ID", "device_id", 0},
        {"RESULT", "result", 0}, {"REASON", "reason", 0},         {"PEER", "peer", 0},
        {NULL, NULL, 0}};
    const char *device = NULL, *result = NULL, *limit_s = NULL, *cursor = NULL;
    int all = 0;
    const struct ctl_opt opts[] = {
        {"--device", CTL_OPT_STR, &device, NULL}, {"--result", CTL_OPT_STR, &result, NULL},
        {"--limit", CTL_OPT_STR, &limit_s, NULL}, {"--cursor", CTL_OPT_STR, &cursor, NULL},
        {"--all", CTL_OPT_FLAG, NULL, &all},      {NULL, 0, NULL, NULL}};
    struct query q = {{0}, 0, 0};
    char path[128];
    int64_t limit;
    int pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (parse_limit(c, limit_s, &limit) != 0)
        return CTL_EXIT_USAGE;
    if (cursor != NULL && (cursor[0] == '\0' || strlen(cursor) > 128))
        return ctl_usage_error(c, "--cursor: 1-128 bytes");
    if (result != NULL && strcmp(result, "pass") != 0 && strcmp(result, "fail") != 0)
        return ctl_usage_error(c, "--result: expected pass or fail");
    if (device != NULL && result != NULL)
        return ctl_usage_error(c, "--device and --result exclude each other");
    if (device != NULL) {
        char id[65];
        if (parse_device_id(c, device, id) != 0)
            return CTL_EXIT_USAGE;
        snprintf(path, sizeof(path), "/v1/devices/%s/attestations", id);
    } else {
        snprintf(path, sizeof(path), "/v1/attestations");
        if (result != NULL)
            query_add(&q, "result", result);
    }
    return list_and_print(c, path, &q, limit, cursor, all, cols);
}

/* --- failure reporting --- */

/* --since / --until: RFC 3339 UTC times, passed on as they are. */
static int
add_time(struct ctl *c, struct query *q, const char *opt, const char *key, const char *v)
{
    int64_t t;
    if (v == NULL)
        return 0;
    if (util_parse_rfc3339(v, &t) != 0) {
        ctl_usage_error(c, "%s: expected an RFC 3339 UTC time such as 2026-11-22T10:00:00Z", opt);
        return -1;
    }
    query_add(q, key, v);
    return 0;
}

static int
cursor_ok(struct ctl *c, const char *cursor)
{
    if (cursor != NULL && (cursor[0] == '\0' || strlen(cursor) > 128)) {
        ctl_usage_error(c, "--cursor: 1-128 bytes");
        return -1;
    }
    return 0;
}

/* The string o[key], or dflt. */
static const char *
text_or(const json_t *o, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : dflt;
}

/* Replaces the real numbers under key in every object of items by text with `digits` decimals, for
 * tables (ctl_print_table shows reals with all their digits). */
static void
round_reals(json_t *items, const char *key, int digits)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        json_t *v = json_object_get(it, key);
        if (json_is_real(v)) {
            char buf[48];
            snprintf(buf, sizeof(buf), "%.*f", digits, json_real_value(v));
            json_object_set_new(it, key, json_string(buf));
        }
    }
}

int
ctl_failures_buckets(struct ctl *c, int argc, char **argv)
{
    static const struct ctl_col cols[] = {{"ID", "id", 0},
                                          {"COUNT", "count", 0},
                                          {"DEVICES", "devices", 0},
                                          {"COMPONENT", "component", 24},
                                          {"REASON", "reason", 0},
                                          {"PC", "pc", 0},
                                          {"FIRST_SEEN", "first_seen", 0},
                                          {"LAST_SEEN", "last_seen", 0},
                                          {NULL, NULL, 0}};
    const char *component = NULL, *version = NULL, *product = NULL, *group = NULL, *since = NULL,
               *until = NULL, *sort = NULL, *limit_s = NULL, *cursor = NULL;
    int all = 0;
    const struct ctl_opt opts[] = {{"--component", CTL_OPT_STR, &component, NULL},
                                   {"--version", CTL_OPT_STR, &version, NULL},
                                   {"--product", CTL_OPT_STR, &product, NULL},
                                   {"--group", CTL_OPT_STR, &group, NULL},
                                   {"--since", CTL_OPT_STR, &since, NULL},
                                   {"--until", CTL_OPT_STR, &until, NULL},
                                   {"--sort", CTL_OPT_STR, &sort, NULL},
                                   {"--limit", CTL_OPT_STR, &limit_s, NULL},
                                   {"--cursor", CTL_OPT_STR, &cursor, NULL},
                                   {"--all", CTL_OPT_FLAG, NULL, &all},
                                   {NULL, 0, NULL, NULL}};
    struct query q = {{0}, 0, 0};
    int64_t limit, id;
    int pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (parse_limit(c, limit_s, &limit) != 0 || cursor_ok(c, cursor) != 0)
        return CTL_EXIT_USAGE;
    if (component != NULL) {
        if (!component_ok(component))
            return ctl_usage_error(c, "--component: 1-64 characters of [a-z0-9._-]");
        query_add(&q, "component", component);
    }
    if (version != NULL) {
        if (!version_ok(version))
            return ctl_usage_error(c, "--version: 1-32 printable ASCII characters, no spaces");
        query_add(&q, "image_version", version);
    }
    if (product != NULL) {
        if (parse_id(c, "--product", product, &id) != 0)
            return CTL_EXIT_USAGE;
        query_add_i64(&q, "product_id", id);
    }
    if (group != NULL) {
        if (parse_id(c, "--group", group, &id) != 0)
            return CTL_EXIT_USAGE;
        query_add_i64(&q, "group_id", id);
    }
    if (add_time(c, &q, "--since", "since", since) != 0 ||
        add_time(c, &q, "--until", "until", until) != 0)
        return CTL_EXIT_USAGE;
    if (sort != NULL) {
        if (strcmp(sort, "count") != 0 && strcmp(sort, "devices") != 0 &&
            strcmp(sort, "recent") != 0)
            return ctl_usage_error(c, "--sort: expected count, devices or recent");
        query_add(&q, "sort", sort);
    }
    return list_and_print(c, "/v1/failures/buckets", &q, limit, cursor, all, cols);
}

int
ctl_failures_show(struct ctl *c, int argc, char **argv)
{
    static const struct ctl_col vcols[] = {{"IMAGE_VERSION", "image_version", 0},
                                           {"COUNT", "count", 0},
                                           {"FIRST_SEEN", "first_seen", 0},
                                           {"LAST_SEEN", "last_seen", 0},
                                           {NULL, NULL, 0}};
    static const struct ctl_col scols[] = {{"RECEIVED_AT", "received_at", 0},
                                           {"DEVICE_ID", "device_id", 0},
                                           {"REPORT_ID", "report_id", 0},
                                           {"VERSION", "image_version", 0},
                                           {"LR", "lr", 0},
                                           {"MESSAGE", "message", 50},
                                           {NULL, NULL, 0}};
    int64_t id;
    int ec;
    char path[64];
    json_t *o = NULL;
    if (args_with_id(c, argc, argv, NULL, &id, &ec) != 0)
        return ec;
    snprintf(path, sizeof(path), "/v1/failures/buckets/%lld", (long long)id);
    int rc = request_object(c, "GET", path, NULL, &o);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (c->json) {
        ctl_print_json(o);
    } else {
        json_t *versions = json_incref(json_object_get(o, "versions"));
        json_t *samples = json_incref(json_object_get(o, "samples"));
        json_object_del(o, "versions");
        json_object_del(o, "samples");
        ctl_print_object(o);
        printf("\nversions:\n");
        ctl_print_table(versions, vcols);
        printf("\nsamples (newest first):\n");
        ctl_print_table(samples, scols);
        json_decref(versions);
        json_decref(samples);
    }
    json_decref(o);
    return CTL_EXIT_OK;
}

int
ctl_failures_device(struct ctl *c, int argc, char **argv)
{
    static const struct ctl_col cols[] = {{"REPORT_ID", "report_id", 0},
                                          {"TYPE", "type", 0},
                                          {"RECEIVED_AT", "received_at", 0},
                                          {"UPTIME_S", "uptime_s", 0},
                                          {"COMPONENT", "component", 20},
                                          {"VERSION", "image_version", 0},
                                          {"REASON", "reason", 0},
                                          {"PC", "pc", 0},
                                          {"BUCKET", "bucket_id", 0},
                                          {"MESSAGE", "message", 40},
                                          {NULL, NULL, 0}};
    const char *type = NULL, *limit_s = NULL, *cursor = NULL;
    int all = 0;
    const struct ctl_opt opts[] = {{"--type", CTL_OPT_STR, &type, NULL},
                                   {"--limit", CTL_OPT_STR, &limit_s, NULL},
                                   {"--cursor", CTL_OPT_STR, &cursor, NULL},
                                   {"--all", CTL_OPT_FLAG, NULL, &all},
                                   {NULL, 0, NULL, NULL}};
    struct query q = {{0}, 0, 0};
    char path[128];
    int64_t limit;
    int ec;
    json_t *first = NULL;
    if (device_args(c, argc, argv, opts, "/reports", path, sizeof(path), &ec) != 0)
        return ec;
    if (parse_limit(c, limit_s, &limit) != 0 || cursor_ok(c, cursor) != 0)
        return CTL_EXIT_USAGE;
    if (type != NULL) {
        if (strcmp(type, "crash") != 0 && strcmp(type, "heartbeat") != 0 &&
            strcmp(type, "reboot") != 0)
            return ctl_usage_error(c, "--type: expected crash, heartbeat or reboot");
        query_add(&q, "type", type);
    }
    if (c->json)
        return list_and_print(c, path, &q, limit, cursor, all, cols);
    /* the device's counters come with every page */
    char one[192];
    snprintf(one, sizeof(one), "%s?limit=1", path);
    int rc = request_object(c, "GET", one, NULL, &first);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = list_and_print(c, path, &q, limit, cursor, all, cols);
    if (rc == CTL_EXIT_OK) {
        const json_t *s = json_object_get(first, "summary");
        char *last = NULL;
        const json_t *lu = json_object_get(s, "last_upload");
        if (json_is_string(lu))
            last = strdup(json_string_value(lu));
        printf("\nreports stored: %lld, dropped on the device: %lld, last upload: %s\n",
               (long long)json_integer_value(json_object_get(s, "reports")),
               (long long)json_integer_value(json_object_get(s, "dropped")),
               last != NULL ? last : "-");
        free(last);
    }
    json_decref(first);
    return rc;
}

int
ctl_failures_rates(struct ctl *c, int argc, char **argv)
{
    static const struct ctl_col vcols[] = {{"COMPONENT", "component", 24},
                                           {"VERSION", "image_version", 0},
                                           {"FIRST_SEEN", "first_seen", 0},
                                           {"DEVICE_HOURS", "device_hours", 0},
                                           {"CRASHES", "crashes", 0},
                                           {"CRASHES_PER_HOUR", "crash_rate", 0},
                                           {NULL, NULL, 0}};
    static const struct ctl_col pcols[] = {{"PERIOD", "period_start", 0},
                                           {"COMPONENT", "component", 24},
                                           {"VERSION", "image_version", 0},
                                           {"DEVICE_HOURS", "device_hours", 0},
                                           {"CRASHES", "crashes", 0},
                                           {"CRASHES_PER_HOUR", "crash_rate", 0},
                                           {NULL, NULL, 0}};
    const char *component = NULL, *since = NULL, *until = NULL, *gran = NULL;
    const struct ctl_opt opts[] = {{"--component", CTL_OPT_STR, &component, NULL},
                                   {"--since", CTL_OPT_STR, &since, NULL},
                                   {"--until", CTL_OPT_STR, &until, NULL},
                                   {"--granularity", CTL_OPT_STR, &gran, NULL},
                                   {NULL, 0, NULL, NULL}};
    struct query q = {{0}, 0, 0};
    char path[URL_MAX];
    json_t *o = NULL;
    int pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (component != NULL) {
        if (!component_ok(component))
            return ctl_usage_error(c, "--component: 1-64 characters of [a-z0-9._-]");
        query_add(&q, "component", component);
    }
    if (add_time(c, &q, "--since", "since", since) != 0 ||
        add_time(c, &q, "--until", "until", until) != 0)
        return CTL_EXIT_USAGE;
    if (gran != NULL) {
        if (strcmp(gran, "hour") != 0 && strcmp(gran, "day") != 0)
            return ctl_usage_error(c, "--granularity: expected hour or day");
        query_add(&q, "granularity", gran);
    }
    if (q.bad ||
        snprintf(path, sizeof(path), "/v1/failures/crash-rates%s", q.s) >= (int)sizeof(path))
        return ctl_usage_error(c, "arguments too long");
    int rc = request_object(c, "GET", path, NULL, &o);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (c->json) {
        ctl_print_json(o);
    } else {
        json_t *versions = json_object_get(o, "versions"), *items = json_object_get(o, "items");
        const json_t *fleet = json_object_get(o, "fleet");
        round_reals(versions, "device_hours", 1);
        round_reals(versions, "crash_rate", 4);
        round_reals(items, "device_hours", 1);
        round_reals(items, "crash_rate", 4);
        const char *gran_s = text_or(o, "granularity", "period");
        printf("%s to %s, by %s\n\nversions:\n", text_or(o, "since", "?"), text_or(o, "until", "?"),
               gran_s);
        ctl_print_table(versions, vcols);
        printf("\nper %s:\n", gran_s);
        ctl_print_table(items, pcols);
        double dh = json_number_value(json_object_get(fleet, "device_hours"));
        double free_h = json_number_value(json_object_get(fleet, "crash_free_device_hours"));
        printf("\nfleet: %.1f device-hours, %lld crashes, %.1f crash-free device-hours", dh,
               (long long)json_integer_value(json_object_get(fleet, "crashes")), free_h);
        if (dh > 0)
            printf(" (%.2f%%)", 100.0 * free_h / dh);
        printf("\n");
        if (json_is_true(json_object_get(o, "truncated")))
            printf("(truncated: narrow --since/--until or --component)\n");
    }
    json_decref(o);
    return CTL_EXIT_OK;
}

int
ctl_failures_flags(struct ctl *c, int argc, char **argv)
{
    static const struct ctl_col cols[] = {{"ID", "id", 0},
                                          {"CREATED_AT", "created_at", 0},
                                          {"KIND", "kind", 0},
                                          {"COMPONENT", "component", 24},
                                          {"VERSION", "image_version", 0},
                                          {"PREVIOUS", "previous_version", 0},
                                          {"BUCKET", "bucket_id", 0},
                                          {"DETAIL", "detail", 60},
                                          {NULL, NULL, 0}};
    const char *limit_s = NULL, *cursor = NULL;
    int all = 0;
    const struct ctl_opt opts[] = {{"--limit", CTL_OPT_STR, &limit_s, NULL},
                                   {"--cursor", CTL_OPT_STR, &cursor, NULL},
                                   {"--all", CTL_OPT_FLAG, NULL, &all},
                                   {NULL, 0, NULL, NULL}};
    struct query q = {{0}, 0, 0};
    int64_t limit;
    int pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (parse_limit(c, limit_s, &limit) != 0 || cursor_ok(c, cursor) != 0)
        return CTL_EXIT_USAGE;
    return list_and_print(c, "/v1/failures/flags", &q, limit, cursor, all, cols);
}

/* A streamed download: the body goes to out as it arrives; an error reply (HTTP >= 400) is kept
 * (bounded) for print_api_error instead. */
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
        return n <= 64 * 1024 - k->err.len ? on_write(ptr, size, nmemb, &k->err) : 0;
    if (fwrite(ptr, 1, n, k->out) != n) {
        k->write_failed = 1;
        return 0;
    }
    k->bytes += n;
    return n;
}

int
ctl_failures_export(struct ctl *c, int argc, char **argv)
{
    const char *format = NULL, *since = NULL, *until = NULL;
    const struct ctl_opt opts[] = {{"--format", CTL_OPT_STR, &format, NULL},
                                   {"--since", CTL_OPT_STR, &since, NULL},
                                   {"--until", CTL_OPT_STR, &until, NULL},
                                   {NULL, 0, NULL, NULL}};
    struct query q = {{0}, 0, 0};
    struct http *h = NULL;
    struct sink k;
    char url[URL_MAX];
    int pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (format == NULL || (strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0))
        return ctl_usage_error(c, "--format: expected csv or jsonl");
    query_add(&q, "format", format);
    if (add_time(c, &q, "--since", "since", since) != 0 ||
        add_time(c, &q, "--until", "until", until) != 0)
        return CTL_EXIT_USAGE;
    int rc = http_setup(c, &h);
    if (rc != CTL_EXIT_OK || h == NULL)
        return rc != CTL_EXIT_OK ? rc : CTL_EXIT_LOCAL;
    if (q.bad ||
        snprintf(url, sizeof(url), "%s/v1/failures/export%s", h->base, q.s) >= (int)sizeof(url))
        return ctl_usage_error(c, "arguments too long");
    memset(&k, 0, sizeof(k));
    k.curl = h->curl;
    k.out = stdout;
    CURL *cu = h->curl;
    h->errbuf[0] = '\0';
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h->hdrs);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, &k);
    /* an export may take long and be large: no overall timeout or size cap, but a stall is an error
     */
    curl_easy_setopt(cu, CURLOPT_TIMEOUT, 0L);
    curl_easy_setopt(cu, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)0);
    curl_easy_setopt(cu, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(cu, CURLOPT_LOW_SPEED_TIME, HTTP_TIMEOUT_S);
    CURLcode cr = curl_easy_perform(cu);
    if (k.status == 0)
        curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &k.status);
    if (k.write_failed) {
        ctl_err("cannot write the export: %s", strerror(errno));
        rc = CTL_EXIT_LOCAL;
    } else if (k.status >= 400) {
        print_api_error(c, k.status, &k.err);
        rc = CTL_EXIT_API;
    } else if (cr != CURLE_OK) {
        ctl_err("the export was cut short after %llu bytes: %s", (unsigned long long)k.bytes,
                h->errbuf[0] ? h->errbuf : curl_easy_strerror(cr));
        rc = k.bytes > 0 ? CTL_EXIT_API : CTL_EXIT_CONN;
    } else if (k.status < 200 || k.status > 299) {
        ctl_err("bad_response: unexpected HTTP status %ld", k.status);
        rc = CTL_EXIT_API;
    } else {
        rc = fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_LOCAL;
    }
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, (void *)NULL);
    buf_free(&k.err);
    return rc;
}
