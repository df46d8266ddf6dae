/* aegisctl: the admin and manufacturer CLI of Aegis. main() parses the global options, finds the
 * command in the command files' tables and runs it: the session and shell commands (here and
 * cmd_context.c), cmd_local.c and cmd_backup.c (data directory), and one file per API resource
 * (cmd_tenant.c, cmd_products.c, cmd_images.c, cmd_ota.c, cmd_deployments.c, cmd_devices.c,
 * cmd_attest.c, cmd_failures.c, cmd_audit.c). Global options are also accepted after the command
 * words (ctl_parse). */
#include "cmd_attest.h"
#include "cmd_audit.h"
#include "cmd_backup.h"
#include "cmd_context.h"
#include "cmd_deployments.h"
#include "cmd_devices.h"
#include "cmd_failures.h"
#include "cmd_local.h"
#include "cmd_images.h"
#include "cmd_ota.h"
#include "cmd_products.h"
#include "cmd_tenant.h"
#include "ctl.h"
#include "ctl_args.h"
#include "ctl_client.h"
#include "ctl_complete.h"
#include "ctl_context.h"
#include "ctl_suggest.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int run_help(struct ctl *c, int argc, char **argv);
static int run_version(struct ctl *c, int argc, char **argv);
static int run_completion(struct ctl *c, int argc, char **argv);

static const struct ctl_cmd meta_cmds[] = {
    {"help", NULL, run_help, 0, "[COMMAND [SUBCOMMAND]]",
     "show the help of aegisctl or of a command",
     "Without arguments the global help; with a command group its commands (aegisctl help "
     "devices);\n"
     "with a command its help (aegisctl help devices list, the same as aegisctl devices list "
     "--help).\n",
     NULL},
    {"version", NULL, run_version, 0, "", "print aegisctl's version",
     "Prints \"aegisctl VERSION\" (also aegisctl --version).\n", NULL},
    {"completion", NULL, run_completion, 0, "bash|zsh", "print a shell completion script",
     "Prints a completion script for bash or zsh made from aegisctl's command tables: commands,\n"
     "subcommands and options. Load it in the current shell with\n"
     "  source <(aegisctl completion bash)\n"
     "or install it, e.g. aegisctl completion bash > /etc/bash_completion.d/aegisctl; for zsh,\n"
     "source <(aegisctl completion zsh) in ~/.zshrc (it uses zsh's bashcompinit).\n",
     NULL},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL},
};

/* Every command file's table, in the order of `aegisctl --help`; the first NSESSION are the session
 * and shell commands, listed apart from the local and the API ones. */
static const struct ctl_cmd *const tables[] = {
    meta_cmds,         cmd_context_cmds,  cmd_local_cmds, cmd_backup_cmds,      cmd_tenant_cmds,
    cmd_products_cmds, cmd_images_cmds,   cmd_ota_cmds,   cmd_deployments_cmds, cmd_devices_cmds,
    cmd_attest_cmds,   cmd_failures_cmds, cmd_audit_cmds};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))
#define NSESSION 2

/* The command after prev in the tables (prev NULL: the first), or NULL after the last. */
static const struct ctl_cmd *
next_command(const struct ctl_cmd *prev, size_t *table)
{
    if (prev == NULL) {
        *table = 0;
        prev = tables[0];
    } else {
        prev++;
    }
    while (prev->group == NULL) {
        if (++*table >= NTABLES)
            return NULL;
        prev = tables[*table];
    }
    return prev;
}

static const char global_help[] =
    "Global options (before or after the command; a command's own option of the same name wins):\n"
    "  --server URL       API base URL (env AEGIS_SERVER, else the context, "
    "else " CTL_DEFAULT_SERVER ")\n"
    "  --token-file F     read the API token from file F (else env AEGIS_TOKEN, else the context)\n"
    "  --token T          API token; prefer aegisctl login, --token-file or the environment (a\n"
    "                     token on the command line stays in the shell's history)\n"
    "  --cacert FILE      CA certificate(s) to verify the server (env AEGIS_CACERT, else the\n"
    "                     context, else <pki_dir>/root.crt when it exists)\n"
    "  --data-dir DIR     data directory (default \"var\"): database DIR/aegis.db, PKI DIR/pki\n"
    "  --config FILE      aegisd configuration file; database and pki_dir are taken from it\n"
    "  -o, --output FMT   table (default), wide (every column, untruncated), json, name (IDs "
    "only,\n"
    "                     one per line) or jsonpath=EXPR (the selected values)\n"
    "  --json             the same as -o json: API responses as received, pretty\n"
    "  --no-headers       tables without their header line\n"
    "  --help             this help; COMMAND --help (or aegisctl help COMMAND): a command's help\n"
    "  --version          print the version\n"
    "\n"
    "The context: aegisctl login --server URL [--cacert FILE] [--token-file F] stores the server, "
    "its\n"
    "CA and the token's file in $XDG_CONFIG_HOME/aegis/config (default ~/.config/aegis/config, "
    "mode\n"
    "0600), so later commands need none of these options; options and the environment win over "
    "it.\n"
    "\n"
    "Devices are named by their ID (64 hex characters) or by a unique prefix of at least 4. Times\n"
    "(--since, --until) are RFC 3339 (2026-11-22T10:00:00Z, 2026-11-22T11:00:00.250+01:00), a "
    "date\n"
    "(2026-11-22, midnight UTC) or a time back from now (90s, 15m, 1h, 2d, 1w, 1h30m).\n";

static const char exit_help[] =
    "Exit codes: 0 ok, 1 API error, 2 usage error (also an ambiguous device prefix), 3 connection "
    "or\n"
    "TLS failure, 4 local failure (files, database, PKI), 5 unauthorized or forbidden (HTTP 401,\n"
    "403), 6 not found (HTTP 404, or a device prefix that matches nothing).\n";

/* 1 when cmd of table t belongs to section sec: 0 session and shell, 1 local, 2 API. */
static int
in_section(const struct ctl_cmd *cmd, size_t t, int sec)
{
    if (t < NSESSION)
        return sec == 0;
    return (sec == 1 && cmd->api != 1) || (sec == 2 && cmd->api != 0);
}

static void
print_command_list(FILE *f, const char *group)
{
    static const char *const headers[] = {
        "Session and shell commands:\n", "Local commands (on the data directory):\n",
        "API commands (--server, --token-file, or the context):\n"};
    int printed = 0;
    for (int sec = 0; sec < 3; sec++) {
        int header = 0;
        size_t t;
        for (const struct ctl_cmd *cmd = next_command(NULL, &t); cmd != NULL;
             cmd = next_command(cmd, &t)) {
            if (!in_section(cmd, t, sec) || (group != NULL && strcmp(cmd->group, group) != 0))
                continue;
            if (!header)
                fprintf(f, "%s%s", printed ? "\n" : "", headers[sec]);
            header = printed = 1;
            char name[64];
            snprintf(name, sizeof(name), "%s%s%s", cmd->group, cmd->name ? " " : "",
                     cmd->name ? cmd->name : "");
            fprintf(f, "  %-18s %s\n", name, cmd->summary);
        }
    }
}

static void
print_help(FILE *f)
{
    fprintf(f, "usage: aegisctl [GLOBAL OPTIONS] COMMAND [ARGS] [--help]\n\n%s\n", global_help);
    print_command_list(f, NULL);
    fprintf(f, "\n%s", exit_help);
}

/* --- finding the command --- */

static const struct ctl_cmd *
find_command(const char *group, const char *name)
{
    size_t t;
    for (const struct ctl_cmd *cmd = next_command(NULL, &t); cmd != NULL;
         cmd = next_command(cmd, &t)) {
        if (strcmp(cmd->group, group) != 0)
            continue;
        if (cmd->name == NULL || (name != NULL && strcmp(cmd->name, name) == 0))
            return cmd;
    }
    return NULL;
}

static int
group_exists(const char *group)
{
    size_t t;
    for (const struct ctl_cmd *cmd = next_command(NULL, &t); cmd != NULL;
         cmd = next_command(cmd, &t)) {
        if (strcmp(cmd->group, group) == 0)
            return 1;
    }
    return 0;
}

/* The nearest subcommand of group to name, or NULL. */
static const char *
suggest_name(const char *group, const char *name)
{
    struct ctl_suggest sg;
    size_t t;
    ctl_suggest_init(&sg, name);
    for (const struct ctl_cmd *cmd = next_command(NULL, &t); cmd != NULL;
         cmd = next_command(cmd, &t))
        if (strcmp(cmd->group, group) == 0)
            ctl_suggest_add(&sg, cmd->name);
    return ctl_suggest_best(&sg);
}

/* "unknown command" for the words group [name], with the nearest command: "did you mean 'devices
 * list'?". Returns CTL_EXIT_USAGE. */
static int
unknown_command(const char *group, const char *name)
{
    struct ctl_suggest sg;
    size_t t;
    ctl_suggest_init(&sg, group);
    for (const struct ctl_cmd *cmd = next_command(NULL, &t); cmd != NULL;
         cmd = next_command(cmd, &t))
        ctl_suggest_add(&sg, cmd->group);
    const char *g = ctl_suggest_best(&sg);
    if (g == NULL)
        return ctl_usage_error(NULL, "unknown command '%.64s'", group);
    const char *sub = NULL;
    /* a group with subcommands has no one-word command */
    if (find_command(g, NULL) == NULL && name != NULL && name[0] != '-')
        sub = find_command(g, name) != NULL ? name : suggest_name(g, name);
    if (sub != NULL)
        return ctl_usage_error(NULL, "unknown command '%.64s'; did you mean '%s %s'?", group, g,
                               sub);
    return ctl_usage_error(NULL, "unknown command '%.64s'; did you mean '%s'?", group, g);
}

/* A group without a (known) subcommand: its commands, and the nearest to name. */
static int
unknown_subcommand(const char *group, const char *name)
{
    if (name == NULL) {
        ctl_err("'%s' needs a subcommand", group);
    } else {
        const char *sub = suggest_name(group, name);
        if (sub != NULL)
            ctl_err("unknown command '%.64s %.64s'; did you mean '%s %s'?", group, name, group,
                    sub);
        else
            ctl_err("unknown command '%.64s %.64s'", group, name);
    }
    print_command_list(stderr, group);
    return CTL_EXIT_USAGE;
}

/* --- help, version, completion --- */

static int
run_help(struct ctl *c, int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    int n = 0;
    int pr = ctl_parse(c, argc, argv, NULL, pos, 0, 2, &n);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (n == 0) {
        print_help(stdout);
        return CTL_EXIT_OK;
    }
    if (!group_exists(pos[0]))
        return unknown_command(pos[0], pos[1]);
    const struct ctl_cmd *cmd = find_command(pos[0], pos[1]);
    if (cmd == NULL && pos[1] != NULL)
        return unknown_subcommand(pos[0], pos[1]);
    if (cmd == NULL) {
        print_command_list(stdout, pos[0]);
        return CTL_EXIT_OK;
    }
    if (cmd->name == NULL && pos[1] != NULL)
        return ctl_usage_error(c, "'%s' has no subcommands", pos[0]);
    ctl_cmd_help(stdout, cmd);
    return CTL_EXIT_OK;
}

static int
run_version(struct ctl *c, int argc, char **argv)
{
    int pr = ctl_parse(c, argc, argv, NULL, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    printf("aegisctl %s\n", AEGIS_VERSION);
    return CTL_EXIT_OK;
}

static int
run_completion(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    int pr = ctl_parse(c, argc, argv, NULL, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    enum ctl_shell sh;
    if (strcmp(pos[0], "bash") == 0)
        sh = CTL_SHELL_BASH;
    else if (strcmp(pos[0], "zsh") == 0)
        sh = CTL_SHELL_ZSH;
    else
        return ctl_usage_error(c, "expected bash or zsh, got '%.32s'", pos[0]);
    ctl_complete_print(stdout, sh, tables, NTABLES);
    return CTL_EXIT_OK;
}

/* --- main --- */

/* The global options before the command; *i ends at the command's first word. Returns 0, 1 when
 * --help or --version was answered, or -1 (usage error printed). */
static int
leading_options(struct ctl *c, int argc, char **argv, int *i)
{
    int help = 0, version = 0;
    for (; *i < argc; (*i)++) {
        const char *a = argv[*i];
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (strcmp(a, "--") == 0) {
            (*i)++;
            break;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help = 1;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            version = 1;
            continue;
        }
        int r = ctl_global_option(c, argc, argv, i);
        if (r < 0)
            return -1;
        if (r == 0) {
            struct ctl_suggest sg;
            ctl_suggest_init(&sg, a);
            for (const struct ctl_gopt *g = ctl_global_opts; g->name != NULL; g++)
                ctl_suggest_add(&sg, g->name);
            const char *best = ctl_suggest_best(&sg);
            if (best != NULL)
                ctl_usage_error(NULL, "unknown global option '%.64s'; did you mean '%s'?", a, best);
            else
                ctl_usage_error(NULL, "unknown global option '%.64s'", a);
            return -1;
        }
    }
    if (version)
        printf("aegisctl %s\n", AEGIS_VERSION);
    else if (help)
        print_help(stdout);
    return help || version;
}

int
main(int argc, char **argv)
{
    struct ctl c;
    int i = 1;
    memset(&c, 0, sizeof(c));
    log_set_level(LOG_WARN);

    /* 1. global options before the command (the command's ctl_parse takes those after it) */
    int r = leading_options(&c, argc, argv, &i);
    if (r != 0)
        return r > 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
    if (i >= argc) {
        print_help(stderr);
        return CTL_EXIT_USAGE;
    }

    /* 2. the command; global options may also come between its two words */
    const char *group = argv[i];
    if (!group_exists(group))
        return unknown_command(group, i + 1 < argc ? argv[i + 1] : NULL);
    const struct ctl_cmd *cmd = find_command(group, NULL);
    while (cmd == NULL && i + 1 < argc && argv[i + 1][0] == '-' && argv[i + 1][1] != '\0') {
        int at = i + 1;
        if ((r = ctl_global_option(&c, argc, argv, &at)) < 0)
            return CTL_EXIT_USAGE;
        if (r == 0)
            break;
        argv[at] = argv[i]; /* the group word moves up to just before the subcommand */
        i = at;
    }
    const char *name = i + 1 < argc ? argv[i + 1] : NULL;
    if (cmd == NULL)
        cmd = find_command(group, name);
    if (cmd == NULL) {
        if (name != NULL && (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)) {
            print_command_list(stdout, group);
            return CTL_EXIT_OK;
        }
        return unknown_subcommand(group, name);
    }
    int words = cmd->name != NULL ? 2 : 1;

    /* 3. run */
    c.cmd = cmd;
    int rc = cmd->run(&c, argc - i - words, argv + i + words);
    ctl_client_cleanup(&c);
    if (fflush(stdout) != 0 && rc == CTL_EXIT_OK) {
        ctl_err("cannot write the output");
        rc = CTL_EXIT_LOCAL;
    }
    return rc;
}
