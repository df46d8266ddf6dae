#include "service.h"

#include "errbuf.h"
#include "rest.h"
#include "sim.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_LIMIT 1000
#define ANSWER_MAX (16u << 20) /* a page of 1,000 reports is well under 1 MiB */
#define TIMEOUT_S 60L
#define TOKEN_MAX 512
#define PATH_LEN 1024

/* GETs path; returns the parsed 200 answer (caller decrefs), or NULL with err set. */
static json_t *
get_json(rest *c, const char *path, char *err, size_t errlen)
{
    struct rest_reply rep;
    char why[256];
    json_t *j = NULL;
    int rc = rest_request(c, "GET", path, NULL, &rep, why, sizeof(why));
    if (rc == REST_TOO_BIG)
        errbuf_set(err, errlen, "GET %s%s: answer too large", rest_base(c), path);
    else if (rc != REST_OK && rc != REST_BAD_JSON)
        errbuf_set(err, errlen, "GET %s%s: %s", rest_base(c), path, why);
    else if (rep.status != 200)
        errbuf_set(err, errlen, "GET %s%s: HTTP %ld: %.200s", rest_base(c), path, rep.status,
                   rep.body != NULL ? rep.body : "");
    else if (!json_is_object(rep.json))
        errbuf_set(err, errlen, "GET %s%s: the answer is not a JSON object", rest_base(c), path);
    else
        j = json_incref(rep.json);
    rest_reply_free(&rep);
    return j;
}

/* Adds one device's counts: its summary's "reports", and its crash reports page by page. */
static int
count_device(rest *c, const char *id, struct service_count *out, char *err, size_t errlen)
{
    char path[PATH_LEN], *cursor = NULL;
    int rc = -1, first = 1;
    for (;;) {
        int len = snprintf(path, sizeof(path), "/v1/devices/%s/reports?type=crash&limit=%d", id,
                           PAGE_LIMIT);
        if (len < 0 || (size_t)len >= sizeof(path) ||
            (cursor != NULL && rest_query_add(path, sizeof(path), "cursor", cursor) != 0)) {
            errbuf_set(err, errlen, "URL too long for device %s", id);
            goto out;
        }
        json_t *page = get_json(c, path, err, errlen);
        if (page == NULL)
            goto out;
        const json_t *items = json_object_get(page, "items");
        const json_t *next = json_object_get(page, "next_cursor");
        const json_t *reports = json_object_get(json_object_get(page, "summary"), "reports");
        if (!json_is_array(items) || (first && !json_is_integer(reports)) ||
            (!json_is_null(next) && !json_is_string(next))) {
            errbuf_set(err, errlen, "device %s: unexpected answer (no items, summary or cursor)",
                       id);
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
    const struct rest_opts o = {server, cacert, token, NULL, TIMEOUT_S, ANSWER_MAX};
    rest *c = NULL;
    int rc = -1;
    memset(out, 0, sizeof(*out));
    if (strlen(token) > TOKEN_MAX) {
        errbuf_set(err, errlen, "the API token is longer than %d characters", TOKEN_MAX);
        return -1;
    }
    if (rest_open(&o, &c, NULL, 0) != REST_OK) {
        errbuf_set(err, errlen, "cannot set up an HTTPS client");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (count_device(c, ids[i], out, err, errlen) != 0)
            goto out;
    rc = 0;
out:
    rest_close(c);
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
