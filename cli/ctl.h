/* aegisctl's shared types and error reporting. The dispatcher (aegisctl.c) finds a command in the
 * tables of the command files (cmd_*.c) and runs it; a command file uses the argument parser
 * (ctl_args), the printers (ctl_print), the API session (ctl_client) and the generic list and show
 * (ctl_res); nothing calls back up into the dispatcher.
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

#include <stdio.h>

#include "version.h"

enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_API = 1,   /* the API answered an error (HTTP >= 400) or an unusable response */
    CTL_EXIT_USAGE = 2, /* unknown command or option, missing or malformed argument */
    CTL_EXIT_CONN = 3,  /* connection or TLS failure */
    CTL_EXIT_LOCAL = 4, /* local failure: files, database, PKI */
    CTL_EXIT_AUTH = 5,  /* the API refused the credentials: 401 (unauthorized) or 403 (forbidden) */
    CTL_EXIT_NOT_FOUND = 6, /* the API answered 404, or a device ID prefix matched nothing */
};

/* How results are printed (global -o / --output, --json, --no-headers; ctl_print). */
enum ctl_output {
    CTL_OUT_TABLE = 0, /* tables fitted to the terminal, "key: value" for one object */
    CTL_OUT_WIDE,      /* tables with every column, never truncated */
    CTL_OUT_JSON,      /* the API's JSON, pretty (--json is -o json) */
    CTL_OUT_JSONPATH,  /* -o jsonpath=EXPR: the selected values, one per line (ctl.jsonpath) */
    CTL_OUT_NAME,      /* -o name: the IDs only, one per line (for scripts and xargs) */
};

struct ctl;
struct ctl_client;
struct ctl_resource;

#define CTL_BOTH 2 /* struct ctl_cmd.api of a command that works locally or over the API */

/* One command: "group name" (name NULL for one-word commands such as "migrate"). A command file
 * exports its commands as an array ended by an entry with group NULL. */
struct ctl_cmd {
    const char *group;
    const char *name;
    int (*run)(struct ctl *c, int argc, char **argv);
    int api; /* 1: talks to the REST API; 0: works on the data directory; CTL_BOTH: either (the
              * command says which, see ctl_local_mode) */
    const char *usage;   /* arguments after the command words, e.g. "NAME [--description D]" */
    const char *summary; /* one line for the command list */
    const char *help;    /* details for --help: what it does, options, output */
    const struct ctl_resource *res; /* what ctl_res_list / ctl_res_show work on, else NULL */
};

/* Global state of one invocation. Strings point into argv or the environment unless noted. */
struct ctl {
    const char *data_dir;    /* --data-dir, or NULL */
    const char *config_path; /* --config, or NULL */
    int cfg_ready;           /* cfg resolved (ctl_config) */
    struct config cfg;       /* database and pki_dir come from here */
    const char *server;      /* --server / AEGIS_SERVER, or the default (checked by ctl_client) */
    const char *token_arg;   /* --token, or NULL */
    const char *token_file;  /* --token-file, or NULL */
    const char *cacert; /* --cacert / AEGIS_CACERT, or NULL (then <pki_dir>/root.crt if present) */
    int json;           /* --json or -o json (kept equal to output == CTL_OUT_JSON) */
    enum ctl_output output;    /* -o / --output */
    const char *jsonpath;      /* the EXPR of -o jsonpath=EXPR, else NULL */
    int no_headers;            /* --no-headers: tables without their header line */
    int api_explicit;          /* --server, --token or --token-file was given */
    const struct ctl_cmd *cmd; /* the command being run, for usage messages */
    struct ctl_client *api;    /* the API session (lazily made, ctl_client_cleanup), or NULL */
};

/* 1 when a CTL_BOTH command works on the data directory: --data-dir or --config was given and
 * none of --server, --token, --token-file. */
int ctl_local_mode(const struct ctl *c);

/* Resolves c->cfg once: --config FILE (config_load_file) and/or --data-dir (config_set "data_dir"),
 * then config_finalize. Returns 0, or -1 with the error printed. */
int ctl_config(struct ctl *c);

/* Prints "error: <msg>" to stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "error: <msg>" and the usage of the current command (c and c->cmd may be NULL: the
 * global usage) to stderr. Returns CTL_EXIT_USAGE. */
int ctl_usage_error(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "group name" of a command, its usage line, and its --help text. */
void ctl_cmd_name(FILE *f, const struct ctl_cmd *cmd);
void ctl_cmd_usage(FILE *f, const struct ctl_cmd *cmd);
void ctl_cmd_help(FILE *f, const struct ctl_cmd *cmd);

#endif
