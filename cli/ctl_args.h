/* ctl_args: strict parsing of a command's arguments (options, positional arguments, IDs, limits,
 * times), the global options (accepted before and after the command words), device ID prefixes,
 * and the JSON request bodies built from them. Errors are printed as usage errors. */
#ifndef AEGIS_CTL_ARGS_H
#define AEGIS_CTL_ARGS_H

#include "ctl.h"
#include "ctl_time.h"

#include <jansson.h>
#include <stdint.h>

enum ctl_opt_kind { CTL_OPT_FLAG, CTL_OPT_STR, CTL_OPT_MULTI };

/* How often a CTL_OPT_MULTI option may be given (the API takes at most 8 tag filters). */
#define CTL_OPT_MULTI_MAX 8

/* One option of a command. name includes the dashes ("--group"). For CTL_OPT_FLAG *flag is set to
 * 1; for CTL_OPT_STR *str gets the value (borrowed from argv). CTL_OPT_MULTI is repeatable: str
 * points to an array of CTL_OPT_MULTI_MAX, each occurrence's value goes to str[*flag] and *flag
 * counts them (more is a usage error); values are never split. Both "--opt value" and
 * "--opt=value" are accepted. */
struct ctl_opt {
    const char *name;
    enum ctl_opt_kind kind;
    const char **str;
    int *flag;
};

/* The global options: name (with dashes) and whether it takes a value; ended by name NULL. */
struct ctl_gopt {
    const char *name;
    int has_value;
};
extern const struct ctl_gopt ctl_global_opts[];

/* One global option at argv[*i] (*i advanced past its value): sets its field of c. Returns 1 when
 * it was one, 0 when argv[*i] is not a global option, -1 on a usage error (printed). --help and
 * --version are not handled here (the dispatcher and ctl_parse do). */
int ctl_global_option(struct ctl *c, int argc, char **argv, int *i);

/* Parses argv (the arguments after the command words) against opts (terminated by an entry with
 * name NULL; opts may be NULL for none). Positional arguments go to pos[0..maxpos-1]; *npos (may be
 * NULL) gets their number. "--" ends the options. An option that is not the command's but a global
 * one (ctl_global_option) is taken as the global option: the command's own option of the same name
 * wins. An unknown option is a usage error with the nearest known option suggested. Returns 0 when
 * parsed, 1 when --help was asked (help already printed: the command returns CTL_EXIT_OK), or -1 on
 * a usage error (message and usage already printed: the command returns CTL_EXIT_USAGE). */
int ctl_parse(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts, const char **pos,
              int minpos, int maxpos, int *npos);

/* Maps ctl_parse's result to an exit code: 1 -> CTL_EXIT_OK, -1 -> CTL_EXIT_USAGE. */
int ctl_parse_exit(int parse_rc);

/* Parses exactly one positional ID (a positive integer) plus opts. Returns 0, or -1 with the exit
 * code to return in *exit_code. */
int ctl_args_id(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts, int64_t *id,
                int *exit_code);

/* Parses exactly one positional device ID or unique ID prefix (ctl_device_arg) plus opts into path
 * "/v1/devices/<id><suffix>". Returns 0, or -1 with the exit code to return in *exit_code. */
int ctl_args_device(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts,
                    const char *suffix, char *path, size_t pathlen, int *exit_code);

/* The checks below print a usage error naming the argument and return -1 when it is malformed. */

/* An integer argument in [min, max]. */
int ctl_int(struct ctl *c, const char *what, const char *s, int64_t min, int64_t max, int64_t *out);
/* A positive integer ID. */
int ctl_parse_id(struct ctl *c, const char *what, const char *s, int64_t *out);
/* A device ID: 64 hex characters, lower-cased into out. */
int ctl_parse_device_id(struct ctl *c, const char *s, char out[65]);
/* --limit: 1-1000, or *out = 0 when s is NULL. */
int ctl_parse_limit(struct ctl *c, const char *s, int64_t *out);
/* --cursor: NULL, or 1-128 bytes. */
int ctl_cursor_ok(struct ctl *c, const char *cursor);
/* --digest: a SHA-256, 64 hex characters, lower-cased into out. */
int ctl_parse_digest(struct ctl *c, const char *s, char out[65]);
/* --since / --until: a time as ctl_time_parse takes it (RFC 3339 with an offset, a date, a
 * duration back from now), into out in the API's UTC form. */
int ctl_parse_time(struct ctl *c, const char *opt, const char *s, char out[CTL_TIME_LEN]);

/* A device named by its ID (64 hex characters) or by a unique prefix of it (4-63 hex characters,
 * as git names commits): a prefix is resolved with GET /v1/devices?id_prefix=P&limit=2. The full,
 * lower-case ID goes to out. Returns CTL_EXIT_OK, or the exit code with the error printed:
 * CTL_EXIT_USAGE (malformed, or an ambiguous prefix: the matches are listed), CTL_EXIT_NOT_FOUND
 * (no device matches), or the request's. */
int ctl_device_arg(struct ctl *c, const char *s, char out[65]);
/* ctl_device_arg with the request made by fetch: it gets the lower-case prefix and returns
 * CTL_EXIT_OK with *page a list page ({"items": [{"id": ...}], "next_cursor": ...}; the caller
 * decrefs) or an exit code with the error printed. For tests. */
typedef int (*ctl_prefix_fetch)(struct ctl *c, const char *prefix, json_t **page);
int ctl_device_resolve(struct ctl *c, const char *s, ctl_prefix_fetch fetch, char out[65]);

/* 1 when s is a component name (1-64 characters of [a-z0-9._-]), an image version (1-32 printable
 * ASCII characters, no spaces). */
int ctl_component_ok(const char *s);
int ctl_version_ok(const char *s);

/* Sets obj[key] to the string s (a usage error naming what if s is not valid UTF-8) or to v.
 * Return 0 or -1 (printed). */
int ctl_set_str(struct ctl *c, json_t *obj, const char *what, const char *key, const char *s);
int ctl_set_int(json_t *obj, const char *key, int64_t v);

#endif
