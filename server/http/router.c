#include "router.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* Matches one pattern against path; captures {x} segments. Returns 1 on a match. */
static int
match_pattern(const char *pattern, const char *path, char params[][API_PARAM_MAX + 1])
{
    const char *p = pattern, *s = path;
    int np = 0;
    while (*p != '\0' && *s != '\0') {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            const char *se = strchr(s, '/');
            size_t len = se ? (size_t)(se - s) : strlen(s);
            if (pe == NULL || len == 0 || len > API_PARAM_MAX || np >= API_MAX_PARAMS)
                return 0;
            memcpy(params[np], s, len);
            params[np][len] = '\0';
            np++;
            p = pe + 1;
            s += len;
            continue;
        }
        if (*p != *s)
            return 0;
        p++;
        s++;
    }
    return *p == '\0' && *s == '\0';
}

int
router_match(const struct route *table, size_t n, const char *method, const char *path,
             char params[][API_PARAM_MAX + 1], char *allow, size_t allowlen)
{
    int path_known = 0;
    assert(table != NULL && allow != NULL && allowlen > 0);
    allow[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!match_pattern(table[i].pattern, path, params))
            continue;
        if (strcmp(table[i].method, method) == 0)
            return (int)i;
        path_known = 1;
        size_t used = strlen(allow);
        snprintf(allow + used, allowlen - used, "%s%s", used ? ", " : "", table[i].method);
    }
    return path_known ? ROUTER_BAD_METHOD : ROUTER_NOT_FOUND;
}

void
router_request_id(const char *incoming, char out[ROUTER_REQID_MAX + 1])
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-";
    size_t n = incoming != NULL ? strlen(incoming) : 0;
    if (n > 0 && n <= ROUTER_REQID_MAX && strspn(incoming, ok) == n) {
        memcpy(out, incoming, n + 1);
        return;
    }
    unsigned char rnd[8];
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(out, ROUTER_REQID_MAX + 1, rnd, sizeof(rnd));
}
