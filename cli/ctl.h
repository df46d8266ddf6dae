/* aegisctl internals shared by aegisctl.c (main, global options, command table), ctl_local.c
 * (commands that work on the data directory: pki, tenants, migrations) and ctl_api.c (commands that
 * call the REST API).
 *
 * Conventions:
 *  - A command handler gets the arguments after its command words and returns the process exit code
 *    (CTL_EXIT_*). It prints its own results to stdout and its own errors to stderr ("error: ...").
 *  - Argument parsing is strict: unknown options, options given twice, missing values, extra or
 *    missing positional arguments and malformed integers are usage errors (exit 2, usage printed).
 *  - The token is never printed except by the two commands that create one (tenant create,
 *    tokens create). */
#ifndef AEGIS_CTL_H
#define AEGIS_CTL_H

#include "config.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "version.h"

enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_API = 1,   /* the API answered an error (HTTP >= 400) or an unusable response */
    CTL_EXIT_USAGE = 2, /* unknown command or option, missing or malformed argument */
    CTL_EXIT_CONN = 3,  /* connection or TLS failure */
    CTL_EXIT_LOCAL = 4, /* local failure: files, database, PKI */
};

struct ctl;
struct store_measurement;

#define CTL_BOTH 2 /* struct ctl_cmd.api of a command that works locally or over the API */

/* One command: "group name" (name NULL for one-word commands such as "migrate"). */
struct ctl_cmd {
    const char *group;
    const char *name;
    int (*run)(struct ctl *c, int argc, char **argv);
    int api; /* 1: talks to the REST API; 0: works on the data directory; CTL_BOTH: either (the
              * command says which, see ctl_local_mode) */
    const char *usage;   /* arguments after the command words, e.g. "NAME [--description D]" */
    const char *summary; /* one line for the command list */
    const char *help;    /* details for --help: what it does, options, output */
};

/* Global state of one invocation. Strings point into argv or the environment unless noted. */
struct ctl {
    const char *data_dir;    /* --data-dir, or NULL */
    const char *config_path; /* --config, or NULL */
    int cfg_ready;           /* cfg resolved (ctl_config) */
    struct config cfg;       /* database and pki_dir come from here */
    const char
        *server; /* --server / AEGIS_SERVER, or NULL for the default (checked by ctl_api.c) */
    const char *token_arg;  /* --token, or NULL */
    const char *token_file; /* --token-file, or NULL */
    const char *cacert; /* --cacert / AEGIS_CACERT, or NULL (then <pki_dir>/root.crt if present) */
    int json;           /* --json */
    int api_explicit;   /* --server, --token or --token-file was given */
    const struct ctl_cmd *cmd; /* the command being run, for usage messages */
    void *http;                /* ctl_api.c's connection state (lazily created, ctl_api_cleanup) */
};

/* 1 when a CTL_BOTH command works on the data directory: --data-dir or --config was given and
 * none of --server, --token, --token-file. */
int ctl_local_mode(const struct ctl *c);

/* Resolves c->cfg once: --config FILE (config_load_file) and/or --data-dir (config_set "data_dir"),
 * then config_finalize. Returns 0, or -1 with the error printed. */
int ctl_config(struct ctl *c);

/* --- argument parsing (aegisctl.c) --- */

enum ctl_opt_kind { CTL_OPT_FLAG, CTL_OPT_STR };

/* One option of a command. name includes the dashes ("--group"). For CTL_OPT_FLAG *flag is set to
 * 1; for CTL_OPT_STR *str gets the value (borrowed from argv). Both "--opt value" and "--opt=value"
 * are accepted. */
struct ctl_opt {
    const char *name;
    enum ctl_opt_kind kind;
    const char **str;
    int *flag;
};

/* Parses argv (the arguments after the command words) against opts (terminated by an entry with
 * name NULL; opts may be NULL for none). Positional arguments go to pos[0..maxpos-1]; *npos (may be
 * NULL) gets their number. "--" ends the options; "--json" is accepted everywhere as the global
 * flag. Returns 0 when parsed, 1 when --help was asked (help already printed: the command returns
 * CTL_EXIT_OK), or -1 on a usage error (message and usage already printed: the command returns
 * CTL_EXIT_USAGE). */
int ctl_parse(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts, const char **pos,
              int minpos, int maxpos, int *npos);

/* Maps ctl_parse's result to an exit code: 1 -> CTL_EXIT_OK, -1 -> CTL_EXIT_USAGE. */
int ctl_parse_exit(int parse_rc);

/* Parses an integer argument in [min, max]; prints a usage error naming what and returns -1 if
 * malformed. */
int ctl_int(struct ctl *c, const char *what, const char *s, int64_t min, int64_t max, int64_t *out);

/* Prints "error: <msg>" and the usage of the current command to stderr. Returns CTL_EXIT_USAGE. */
int ctl_usage_error(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "error: <msg>" to stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Makes service or device text safe to print on a terminal, in place: each control character (C0,
 * DEL, C1) and each bidirectional control or line separator becomes one '?'. */
void ctl_sanitize(char *s);

/* Prints a JSON value pretty (2-space indent) to stdout, with a final newline. */
void ctl_print_json(const json_t *v);
/* Overwrites the string o[key] (a token shown once) in place, before o is freed. Accepts NULL. */
void ctl_json_forget(json_t *o, const char *key);

/* A column of a table: header, the object key it shows, and a width cap in characters (0 = none).
 */
struct ctl_col {
    const char *header;
    const char *key;
    size_t max;
};

/* Prints an array of objects as an aligned table (cols terminated by an entry with header NULL);
 * missing and null values show as "-". Control characters are shown as '?'. */
void ctl_print_table(const json_t *items, const struct ctl_col *cols);

/* Prints an object as aligned "key: value" lines; multi-line strings (PEM) continue indented below
 * their key, nested objects and arrays print as compact JSON. */
void ctl_print_object(const json_t *obj);

/* --- local commands (ctl_local.c) --- */
int ctl_pki_init(struct ctl *c, int argc, char **argv);
int ctl_pki_rotate(struct ctl *c, int argc, char **argv);
int ctl_tenant_create(struct ctl *c, int argc, char **argv);
int ctl_tenant_list(struct ctl *c, int argc, char **argv);
int ctl_tenant_token(struct ctl *c, int argc, char **argv);
int ctl_migrate(struct ctl *c, int argc, char **argv);
/* Platform reference values (bootloader, os) on the data directory; called by the refvals
 * commands of ctl_api.c in local mode. */
int ctl_refvals_add_local(struct ctl *c, const struct store_measurement *m);
int ctl_refvals_list_local(struct ctl *c);
int ctl_refvals_remove_local(struct ctl *c, int64_t id);

/* --- API commands (ctl_api.c) --- */
int ctl_tenant_show(struct ctl *c, int argc, char **argv);
int ctl_tokens_create(struct ctl *c, int argc, char **argv);
int ctl_tokens_list(struct ctl *c, int argc, char **argv);
int ctl_tokens_revoke(struct ctl *c, int argc, char **argv);
int ctl_products_create(struct ctl *c, int argc, char **argv);
int ctl_products_list(struct ctl *c, int argc, char **argv);
int ctl_products_show(struct ctl *c, int argc, char **argv);
int ctl_products_update(struct ctl *c, int argc, char **argv);
int ctl_products_delete(struct ctl *c, int argc, char **argv);
int ctl_groups_create(struct ctl *c, int argc, char **argv);
int ctl_groups_list(struct ctl *c, int argc, char **argv);
int ctl_groups_show(struct ctl *c, int argc, char **argv);
int ctl_groups_update(struct ctl *c, int argc, char **argv);
int ctl_groups_delete(struct ctl *c, int argc, char **argv);
int ctl_devices_import(struct ctl *c, int argc, char **argv);
int ctl_devices_list(struct ctl *c, int argc, char **argv);
int ctl_devices_show(struct ctl *c, int argc, char **argv);
int ctl_devices_claim(struct ctl *c, int argc, char **argv);
int ctl_devices_move(struct ctl *c, int argc, char **argv);
int ctl_devices_block(struct ctl *c, int argc, char **argv);
int ctl_devices_unblock(struct ctl *c, int argc, char **argv);
int ctl_audit_list(struct ctl *c, int argc, char **argv);
/* Attestation policy and records (CTL_BOTH for refvals: platform values locally, the tenant's app
 * values over the API). */
int ctl_refvals_list(struct ctl *c, int argc, char **argv);
int ctl_refvals_add(struct ctl *c, int argc, char **argv);
int ctl_refvals_remove(struct ctl *c, int argc, char **argv);
int ctl_minimums_list(struct ctl *c, int argc, char **argv);
int ctl_minimums_set(struct ctl *c, int argc, char **argv);
int ctl_minimums_remove(struct ctl *c, int argc, char **argv);
int ctl_attestations_list(struct ctl *c, int argc, char **argv);
/* Failure reporting (docs/telemetry.md). */
int ctl_failures_buckets(struct ctl *c, int argc, char **argv);
int ctl_failures_show(struct ctl *c, int argc, char **argv);
int ctl_failures_device(struct ctl *c, int argc, char **argv);
int ctl_failures_rates(struct ctl *c, int argc, char **argv);
int ctl_failures_export(struct ctl *c, int argc, char **argv);
int ctl_failures_flags(struct ctl *c, int argc, char **argv);

/* Columns of reference value tables (shared by the local and the API listing). */
extern const struct ctl_col ctl_refval_cols[];

/* Releases ctl_api.c's connection state (curl handle); safe when none was made. */
void ctl_api_cleanup(struct ctl *c);

#endif
