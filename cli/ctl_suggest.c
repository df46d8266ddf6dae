#include "ctl_suggest.h"

#include <assert.h>
#include <string.h>

#define FAR ((size_t)1000)

size_t
ctl_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > CTL_SUGGEST_MAX || lb > CTL_SUGGEST_MAX)
        return FAR;
    /* three rows of the matrix: the transposition looks two rows back */
    size_t rows[3][CTL_SUGGEST_MAX + 1];
    size_t *pp = rows[0], *p = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        p[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t d = p[j] + 1;
            if (cur[j - 1] + 1 < d)
                d = cur[j - 1] + 1;
            if (p[j - 1] + cost < d)
                d = p[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < d)
                d = pp[j - 2] + 1;
            cur[j] = d;
        }
        size_t *t = pp;
        pp = p;
        p = cur;
        cur = t;
    }
    return p[lb];
}

void
ctl_suggest_init(struct ctl_suggest *s, const char *typed)
{
    assert(typed != NULL);
    s->typed = typed;
    s->best = NULL;
    s->best_d = FAR;
    s->tie = 0;
}

/* A candidate that typed is a prefix of counts as near as one edit: "dev" means "devices". */
static size_t
distance_of(const char *typed, const char *cand)
{
    size_t tl = strlen(typed);
    if (tl >= 2 && strlen(cand) > tl && strncmp(typed, cand, tl) == 0)
        return 1;
    return ctl_edit_distance(typed, cand);
}

void
ctl_suggest_add(struct ctl_suggest *s, const char *candidate)
{
    if (candidate == NULL || (s->best != NULL && strcmp(s->best, candidate) == 0))
        return;
    size_t d = distance_of(s->typed, candidate);
    if (d < s->best_d) {
        s->best = candidate;
        s->best_d = d;
        s->tie = 0;
    } else if (d == s->best_d) {
        s->tie = 1;
    }
}

const char *
ctl_suggest_best(const struct ctl_suggest *s)
{
    size_t len = strlen(s->typed);
    size_t limit = len / 3 > 1 ? len / 3 : 1;
    if (s->best == NULL || s->tie || s->best_d == 0 || s->best_d > limit)
        return NULL;
    return s->best;
}
