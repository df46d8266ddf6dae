/* ctl_suggest: "did you mean ...?" for mistyped commands and options, by edit distance (optimal
 * string alignment: insertions, deletions, substitutions and transpositions of two neighbours). */
#ifndef AEGIS_CTL_SUGGEST_H
#define AEGIS_CTL_SUGGEST_H

#include <stddef.h>

/* The edit distance of a and b; strings longer than CTL_SUGGEST_MAX count as far from anything. */
#define CTL_SUGGEST_MAX 64
size_t ctl_edit_distance(const char *a, const char *b);

/* A search for the candidate nearest to what was typed. Strings are borrowed: the candidates must
 * outlive the search. */
struct ctl_suggest {
    const char *typed;
    const char *best; /* nearest candidate so far */
    size_t best_d;
    int tie; /* another candidate is as near as best */
};
void ctl_suggest_init(struct ctl_suggest *s, const char *typed);
void ctl_suggest_add(struct ctl_suggest *s, const char *candidate);
/* The nearest candidate when it is near enough to be what was meant (a distance of about a third
 * of the typed length, at least 1, and no tie), or when typed is a prefix of it only; else NULL. */
const char *ctl_suggest_best(const struct ctl_suggest *s);

#endif
