#include "ctl_client.h"

#include "ctl_context.h"
#include "auth.h"
#include "rest.h"
#include "util.h"

#include <assert.h>
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
#define TOKEN_FILE_MAX 4096
#define URL_MAX 4096
#define BASE_MAX 1024

/* The session of one invocation (c->api). */
struct ctl_client {
    rest *r;
};

void
ctl_client_cleanup(struct ctl *c)
{
    if (c->api == NULL)
        return;
    rest_close(c->api->r);
    free(c->api);
    c->api = NULL;
}

/* Wipes and frees a token. */
static void
token_free(char *t)
{
    if (t == NULL)
        return;
    sodium_memzero(t, strlen(t));
    free(t);
}

/* The token text of s (malloc'd), or NULL with *rc set. */
static char *
token_text(struct ctl *c, const struct ctl_settings *s, int *rc)
{
    char *t = NULL;
    if (s->token_arg != NULL) {
        t = strdup(s->token_arg);
    } else if (s->token_file != NULL) {
        size_t len = 0;
        t = util_read_file(s->token_file, TOKEN_FILE_MAX, &len);
        if (t == NULL) {
            ctl_err("cannot read the token file %s%s", s->token_file,
                    strcmp(s->token_from, "context") == 0 ? " (named by the context: aegisctl "
                                                            "config view)"
                                                          : "");
            *rc = CTL_EXIT_LOCAL;
            return NULL;
        }
        while (len > 0 && (t[len - 1] == '\n' || t[len - 1] == '\r' || t[len - 1] == ' ' ||
                           t[len - 1] == '\t'))
            t[--len] = '\0';
    } else {
        *rc = ctl_usage_error(c, "no API token: use aegisctl login, --token-file F, AEGIS_TOKEN "
                                 "or --token T");
        return NULL;
    }
    if (t == NULL) {
        ctl_err("out of memory");
        *rc = CTL_EXIT_LOCAL;
    }
    return t;
}

/* The API token, checked for its form (malloc'd: token_free), or NULL with the exit code in *rc. */
static char *
load_token(struct ctl *c, const struct ctl_settings *s, int *rc)
{
    char *t = token_text(c, s, rc);
    if (t == NULL)
        return NULL;
    int64_t id;
    unsigned char hash[32];
    int bad = auth_token_parse(t, &id, hash) != 0;
    sodium_memzero(hash, sizeof(hash));
    if (bad) {
        token_free(t);
        *rc = ctl_usage_error(c, "the API token is malformed (expected aegis_<id>_<secret>)");
        return NULL;
    }
    return t;
}

/* The server URL without trailing slashes into base (BASE_MAX bytes). Returns 0 or the exit
 * code. */
static int
check_server(struct ctl *c, const char *srv, char *base)
{
    size_t sl = strlen(srv);
    while (sl > 0 && srv[sl - 1] == '/')
        sl--;
    if (strncasecmp(srv, "https://", 8) != 0 || sl <= 8 || sl >= BASE_MAX)
        return ctl_usage_error(c, "--server: expected an https:// URL, got '%.64s'", srv);
    for (size_t i = 0; i < sl; i++)
        if ((unsigned char)srv[i] <= 0x20 || (unsigned char)srv[i] >= 0x7f)
            return ctl_usage_error(c, "--server: the URL contains spaces or control characters");
    memcpy(base, srv, sl);
    base[sl] = '\0';
    return CTL_EXIT_OK;
}

/* The CA file: cacert (--cacert, AEGIS_CACERT, the context), else <pki_dir>/root.crt when present
 * (into buf), else NULL for the system's. Returns 0 or the exit code. */
static int
find_cafile(struct ctl *c, const char *cacert, char *buf, size_t buflen, const char **ca)
{
    *ca = NULL;
    if (cacert != NULL) {
        if (access(cacert, R_OK) != 0) {
            ctl_err("cannot read the CA file %s: %s", cacert, strerror(errno));
            return CTL_EXIT_LOCAL;
        }
        *ca = cacert;
        return CTL_EXIT_OK;
    }
    if (ctl_config(c) != 0)
        return CTL_EXIT_LOCAL;
    if (snprintf(buf, buflen, "%s/root.crt", c->cfg.pki_dir) < (int)buflen &&
        access(buf, R_OK) == 0)
        *ca = buf;
    return CTL_EXIT_OK;
}

/* Makes c->api on first use. Returns CTL_EXIT_OK with *out, or the exit code (error printed). */
static int
session(struct ctl *c, rest **out)
{
    char base[BASE_MAX], cafile[PATH_MAX], err[256];
    const char *ca = NULL;
    struct ctl_context ctx;
    struct ctl_settings set;
    int rc;

    if (c->api != NULL) {
        *out = c->api->r;
        return CTL_EXIT_OK;
    }
    if (ctl_context_load(&ctx) != 0)
        return CTL_EXIT_LOCAL;
    rc = ctl_context_settings(c, &ctx, &set);
    if (rc == CTL_EXIT_OK)
        rc = check_server(c, set.server, base);
    if (rc == CTL_EXIT_OK)
        rc = find_cafile(c, set.cacert, cafile, sizeof(cafile), &ca);
    if (rc != CTL_EXIT_OK)
        return rc;
    char *token = load_token(c, &set, &rc);
    if (token == NULL)
        return rc;
    const struct rest_opts o = {base,           ca,          token, "aegisctl/" AEGIS_VERSION,
                                HTTP_TIMEOUT_S, RESPONSE_MAX};
    rc = CTL_EXIT_LOCAL;
    c->api = calloc(1, sizeof(*c->api));
    if (c->api == NULL) {
        ctl_err("out of memory");
        goto out;
    }
    if (rest_open(&o, &c->api->r, err, sizeof(err)) != REST_OK) {
        ctl_err("%s", err);
        ctl_client_cleanup(c);
        goto out;
    }
    *out = c->api->r;
    rc = CTL_EXIT_OK;
out:
    token_free(token);
    return rc;
}

/* A copy of s for the terminal (malloc'd, may be NULL). */
static char *
safe_dup(const char *s)
{
    char *t = strdup(s);
    if (t != NULL)
        ctl_sanitize(t);
    return t;
}

/* Prints the "errors" entries of an error reply as "<index>: <error>: <message>", index_base added
 * to each index (the entries of a batch are numbered from the batch's start in its file). */
static void
print_entry_errors(const json_t *e, int64_t index_base)
{
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(e, "errors"), i, it)
    {
        json_t *idx = json_object_get(it, "index");
        const char *code = json_string_value(json_object_get(it, "error"));
        const char *msg = json_string_value(json_object_get(it, "message"));
        char *ec = safe_dup(code != NULL ? code : "?");
        char *em = safe_dup(msg != NULL ? msg : "");
        fprintf(stderr, "%lld: %s: %s\n",
                json_is_integer(idx) ? (long long)(json_integer_value(idx) + index_base) : -1LL,
                ec != NULL ? ec : "?", em != NULL ? em : "");
        free(ec);
        free(em);
    }
}

/* Prints an API error reply to stderr: "error: <code>: <message>" and any "errors" entries. With
 * --json the reply also goes to stdout as received. */
static void
print_api_error(struct ctl *c, const struct rest_reply *rep, int64_t index_base)
{
    const char *code = rest_error_code(rep);
    const char *msg = rest_error_message(rep);
    if (code == NULL) {
        char text[201];
        snprintf(text, sizeof(text), "%s", rep->len > 0 ? rep->body : "(no body)");
        ctl_sanitize(text);
        ctl_err("http_%ld: %s", rep->status, text);
        return;
    }
    char *safe_code = safe_dup(code), *safe = safe_dup(msg != NULL ? msg : "(no message)");
    ctl_err("%s: %s", safe_code != NULL ? safe_code : "error",
            safe != NULL ? safe : "(no message)");
    free(safe_code);
    free(safe);
    print_entry_errors(rep->json, index_base);
    if (c->json)
        ctl_print_json(rep->json);
}

/* The exit code of an API error's HTTP status: scripts tell refused credentials and missing objects
 * from the other errors. */
static int
status_exit(long status)
{
    if (status == 401 || status == 403)
        return CTL_EXIT_AUTH;
    if (status == 404)
        return CTL_EXIT_NOT_FOUND;
    return CTL_EXIT_API;
}

/* The exit code of a transfer that got no usable answer (error printed). */
static int
transfer_exit(rest *r, int rc, const char *err)
{
    switch (rc) {
    case REST_TOO_BIG:
        ctl_err("bad_response: %s", err);
        return CTL_EXIT_API;
    case REST_CONN:
    case REST_TLS:
        ctl_err("cannot talk to %s: %s%s", rest_base(r), err,
                rc == REST_TLS ? " (check --cacert)" : "");
        return CTL_EXIT_CONN;
    default:
        ctl_err("%s", err);
        return CTL_EXIT_LOCAL;
    }
}

static int finish(struct ctl *c, rest *r, int rr, const struct rest_reply *rep_, const char *err,
                  int64_t index_base, json_t **out);

/* ctl_request with index_base for the entries of an error reply (print_entry_errors). */
static int
request(struct ctl *c, const char *method, const char *path, const json_t *body, int64_t index_base,
        json_t **out)
{
    struct rest_reply rep;
    rest *r = NULL;
    char err[512];
    if (out != NULL)
        *out = NULL;
    int rc = session(c, &r);
    if (rc != CTL_EXIT_OK)
        return rc;
    int rr = rest_request(r, method, path, body, &rep, err, sizeof(err));
    return finish(c, r, rr, &rep, err, index_base, out);
}

int
ctl_request(struct ctl *c, const char *method, const char *path, const json_t *body, json_t **out)
{
    return request(c, method, path, body, 0, out);
}

int
ctl_upload(struct ctl *c, const char *path, FILE *in, uint64_t size, json_t **out)
{
    struct rest_reply rep;
    rest *r = NULL;
    char err[512];
    *out = NULL;
    int rc = session(c, &r);
    if (rc != CTL_EXIT_OK)
        return rc;
    int rr = rest_upload(r, path, in, size, &rep, err, sizeof(err));
    return finish(c, r, rr, &rep, err, 0, out);
}

/* The exit code of an answer (rr from rest_*, rep freed here), *out its JSON (may be NULL). */
static int
finish(struct ctl *c, rest *r, int rr, const struct rest_reply *rep_, const char *err,
       int64_t index_base, json_t **out)
{
    struct rest_reply rep = *rep_;
    int rc = CTL_EXIT_OK;
    if (rr == REST_BAD_JSON && out == NULL)
        rr = REST_OK; /* a body nobody reads */
    if (rr != REST_OK && rr != REST_BAD_JSON) {
        rc = transfer_exit(r, rr, err);
    } else if (rep.status >= 400) {
        print_api_error(c, &rep, index_base);
        rc = status_exit(rep.status);
    } else if (rep.status < 200 || rep.status > 299) {
        ctl_err("bad_response: unexpected HTTP status %ld", rep.status);
        rc = CTL_EXIT_API;
    } else if (rr == REST_BAD_JSON) {
        ctl_err("bad_response: the server sent invalid JSON (HTTP %ld): %s", rep.status, err);
        rc = CTL_EXIT_API;
    } else if (out != NULL) {
        *out = json_incref(rep.json);
    }
    rest_reply_free(&rep);
    return rc;
}

int
ctl_request_object(struct ctl *c, const char *method, const char *path, const json_t *body,
                   json_t **out)
{
    return ctl_request_entries(c, method, path, body, 0, out);
}

int
ctl_request_entries(struct ctl *c, const char *method, const char *path, const json_t *body,
                    int64_t index_base, json_t **out)
{
    int rc = request(c, method, path, body, index_base, out);
    if (rc == CTL_EXIT_OK && !json_is_object(*out)) {
        ctl_err("bad_response: expected a JSON object");
        json_decref(*out);
        *out = NULL;
        rc = CTL_EXIT_API;
    }
    return rc;
}

int
ctl_show(struct ctl *c, const char *method, const char *path, const json_t *body)
{
    json_t *o = NULL;
    int rc = ctl_request_object(c, method, path, body, &o);
    if (rc == CTL_EXIT_OK)
        rc = ctl_print_result(c, o, NULL);
    json_decref(o);
    return rc;
}

int
ctl_delete_and_say(struct ctl *c, const char *path, const char *done)
{
    int rc = ctl_request(c, "DELETE", path, NULL, NULL);
    if (rc == CTL_EXIT_OK && !c->json)
        printf("%s\n", done);
    return rc;
}

/* --- query strings --- */

void
ctl_query_add(struct ctl_query *q, const char *key, const char *value)
{
    if (rest_query_add(q->s, sizeof(q->s), key, value) != 0)
        q->bad = 1;
}

void
ctl_query_add_i64(struct ctl_query *q, const char *key, int64_t v)
{
    char num[32];
    snprintf(num, sizeof(num), "%lld", (long long)v);
    ctl_query_add(q, key, num);
}

/* --- lists --- */

/* GET one page: path + q + limit + cursor. */
static int
fetch_page(struct ctl *c, const char *path, const struct ctl_query *q, int64_t limit,
           const char *cursor, json_t **page)
{
    struct ctl_query pq = *q;
    char full[URL_MAX];
    if (limit > 0)
        ctl_query_add_i64(&pq, "limit", limit);
    if (cursor != NULL)
        ctl_query_add(&pq, "cursor", cursor);
    if (pq.bad || snprintf(full, sizeof(full), "%s%s", path, pq.s) >= (int)sizeof(full)) {
        ctl_err("request URL too long");
        return CTL_EXIT_LOCAL;
    }
    int rc = ctl_request_object(c, "GET", full, NULL, page);
    if (rc != CTL_EXIT_OK)
        return rc;
    json_t *items = json_object_get(*page, "items");
    json_t *next = json_object_get(*page, "next_cursor");
    if (!json_is_array(items) || !(json_is_null(next) || json_is_string(next))) {
        ctl_err("bad_response: expected {\"items\": [...], \"next_cursor\": ...}");
        return CTL_EXIT_API;
    }
    return CTL_EXIT_OK;
}

int
ctl_fetch_list(struct ctl *c, const char *path, const struct ctl_query *q, int64_t limit,
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
        rc = fetch_page(c, path, q, limit, cur, &page);
        if (rc != CTL_EXIT_OK)
            goto out;
        if (!all) {
            *result = page;
            page = NULL;
            break;
        }
        json_t *next = json_object_get(page, "next_cursor");
        if (json_array_extend(acc, json_object_get(page, "items")) != 0)
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
    if (all && (*result = json_pack("{s:O, s:n}", "items", acc, "next_cursor")) == NULL)
        goto oom;
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

int
ctl_list_print(struct ctl *c, const char *path, const struct ctl_query *q, int64_t limit,
               const char *cursor, int all, const struct ctl_col *cols)
{
    json_t *res = NULL;
    int rc = ctl_fetch_list(c, path, q, limit, cursor, all, &res);
    if (rc != CTL_EXIT_OK)
        return rc;
    int printed = ctl_print_data(c, res, cols);
    if (printed == 0) {
        ctl_print_table(c, json_object_get(res, "items"), cols);
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
    return ctl_print_exit(printed);
}

/* --- downloads --- */

int
ctl_download(struct ctl *c, const char *path, const struct ctl_query *q)
{
    struct rest_reply rep;
    rest *r = NULL;
    char full[URL_MAX], err[512];
    uint64_t bytes = 0;
    int rc = session(c, &r);
    if (rc != CTL_EXIT_OK)
        return rc;
    assert(r != NULL);
    if (q->bad || snprintf(full, sizeof(full), "%s%s", path, q->s) >= (int)sizeof(full) ||
        strlen(rest_base(r)) + strlen(full) >= URL_MAX)
        return ctl_usage_error(c, "arguments too long");
    int rr = rest_stream(r, full, stdout, &rep, &bytes, err, sizeof(err));
    if (rr == REST_WRITE) {
        ctl_err("cannot write the export: %s", strerror(errno));
        rc = CTL_EXIT_LOCAL;
    } else if (rep.status >= 400) {
        print_api_error(c, &rep, 0);
        rc = status_exit(rep.status);
    } else if (rr == REST_CONN || rr == REST_TLS) {
        ctl_err("the export was cut short after %llu bytes: %s", (unsigned long long)bytes, err);
        rc = bytes > 0 ? CTL_EXIT_API : CTL_EXIT_CONN;
    } else if (rr != REST_OK) {
        ctl_err("%s", err);
        rc = CTL_EXIT_LOCAL;
    } else if (rep.status < 200 || rep.status > 299) {
        ctl_err("bad_response: unexpected HTTP status %ld", rep.status);
        rc = CTL_EXIT_API;
    } else {
        rc = fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_LOCAL;
    }
    rest_reply_free(&rep);
    return rc;
}
