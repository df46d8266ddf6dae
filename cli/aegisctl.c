/* aegisctl: the admin and manufacturer CLI of Aegis. main() parses the global options, finds the
 * command in the command files' tables and runs it: cmd_local.c (data directory), and one file per
 * API resource (cmd_tenant.c, cmd_products.c, cmd_images.c, cmd_ota.c, cmd_deployments.c,
 * cmd_devices.c, cmd_attest.c, cmd_failures.c, cmd_audit.c). */
#include "cmd_attest.h"
#include "cmd_audit.h"
#include "cmd_deployments.h"
#include "cmd_devices.h"
#include "cmd_failures.h"
#include "cmd_local.h"
#include "cmd_images.h"
#include "cmd_ota.h"
#include "cmd_products.h"
#include "cmd_tenant.h"
#include "ctl.h"
#include "ctl_client.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SERVER "https://127.0.0.1:8443"

/* Every command file's table, in the order of `aegisctl --help`. */
static const struct ctl_cmd *const tables[] = {
    cmd_local_cmds,       cmd_tenant_cmds,  cmd_products_cmds, cmd_images_cmds,   cmd_ota_cmds,
    cmd_deployments_cmds, cmd_devices_cmds, cmd_attest_cmds,   cmd_failures_cmds, cmd_audit_cmds};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

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
    "Global options (before the command):\n"
    "  --data-dir DIR    data directory (default \"var\"): database DIR/aegis.db, PKI DIR/pki\n"
    "  --config FILE     aegisd configuration file; database and pki_dir are taken from it\n"
    "  --server URL      API base URL (env AEGIS_SERVER; default " DEFAULT_SERVER ")\n"
    "  --token T         API token (env AEGIS_TOKEN); prefer --token-file or the environment\n"
    "  --token-file F    read the API token from file F\n"
    "  --cacert FILE     CA certificate(s) to verify the server (env AEGIS_CACERT;\n"
    "                    default <pki_dir>/root.crt when it exists)\n"
    "  --json            print JSON (API responses as received, pretty); also accepted after the\n"
    "                    command\n"
    "  --help            this help; COMMAND --help for a command's help\n"
    "  --version         print the version\n";

static const char exit_help[] = "Exit codes: 0 ok, 1 API error, 2 usage error, 3 connection or TLS "
                                "failure, 4 local failure (files, database, PKI).\n";

static void
print_command_list(FILE *f, const char *group)
{
    for (int api = 0; api <= 1; api++) {
        int header = 0;
        size_t t;
        for (const struct ctl_cmd *cmd = next_command(NULL, &t); cmd != NULL;
             cmd = next_command(cmd, &t)) {
            if ((cmd->api != api && cmd->api != CTL_BOTH) ||
                (group != NULL && strcmp(cmd->group, group) != 0))
                continue;
            if (!header) {
                fprintf(f, "%s",
                        api ? "API commands (--server, --token):\n"
                            : "Local commands (on the data directory):\n");
                header = 1;
            }
            char name[64];
            snprintf(name, sizeof(name), "%s%s%s", cmd->group, cmd->name ? " " : "",
                     cmd->name ? cmd->name : "");
            fprintf(f, "  %-18s %s\n", name, cmd->summary);
        }
        if (header && api == 0)
            fprintf(f, "\n");
    }
}

static void
print_help(FILE *f)
{
    fprintf(f, "usage: aegisctl [GLOBAL OPTIONS] COMMAND [ARGS] [--help]\n\n%s\n", global_help);
    print_command_list(f, NULL);
    fprintf(f, "\n%s", exit_help);
}

/* --- main --- */

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

/* A global option taking a value: "--name value" or "--name=value". Returns 1 when argv[*i] is this
 * option (value in *out, *i advanced), 0 when it is another, -1 on a usage error. */
static int
global_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    const char *a = argv[*i];
    size_t nl = strlen(name);
    if (strncmp(a, name, nl) != 0 || (a[nl] != '\0' && a[nl] != '='))
        return 0;
    if (*out != NULL) {
        ctl_usage_error(NULL, "option %s given twice", name);
        return -1;
    }
    if (a[nl] == '=') {
        *out = a + nl + 1;
        return 1;
    }
    if (*i + 1 >= argc) {
        ctl_usage_error(NULL, "option %s needs a value", name);
        return -1;
    }
    *out = argv[++*i];
    return 1;
}

static const char *
env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

int
main(int argc, char **argv)
{
    struct ctl c;
    int help = 0, version = 0, i;
    memset(&c, 0, sizeof(c));
    log_set_level(LOG_WARN);

    /* 1. global options */
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (strcmp(a, "--") == 0) {
            i++;
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
        if (strcmp(a, "--json") == 0) {
            c.json = 1;
            continue;
        }
        int r = 0;
        const struct {
            const char *name;
            const char **dst;
        } vals[] = {{"--data-dir", &c.data_dir}, {"--config", &c.config_path},
                    {"--server", &c.server},     {"--token-file", &c.token_file},
                    {"--token", &c.token_arg},   {"--cacert", &c.cacert}};
        for (size_t k = 0; k < sizeof(vals) / sizeof(vals[0]) && r == 0; k++)
            r = global_value(argc, argv, &i, vals[k].name, vals[k].dst);
        if (r < 0)
            return CTL_EXIT_USAGE;
        if (r == 0)
            return ctl_usage_error(NULL, "unknown global option '%.64s'", a);
    }
    if (version) {
        printf("aegisctl %s\n", AEGIS_VERSION);
        return CTL_EXIT_OK;
    }
    if (help) {
        print_help(stdout);
        return CTL_EXIT_OK;
    }
    if (i >= argc) {
        print_help(stderr);
        return CTL_EXIT_USAGE;
    }

    /* 2. the command */
    const char *group = argv[i];
    const char *name = i + 1 < argc ? argv[i + 1] : NULL;
    if (!group_exists(group))
        return ctl_usage_error(NULL, "unknown command '%.64s'", group);
    const struct ctl_cmd *cmd = find_command(group, name);
    if (cmd == NULL) {
        if (name != NULL && (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)) {
            print_command_list(stdout, group);
            return CTL_EXIT_OK;
        }
        if (name == NULL)
            ctl_err("'%s' needs a subcommand", group);
        else
            ctl_err("unknown command '%.64s %.64s'", group, name);
        print_command_list(stderr, group);
        return CTL_EXIT_USAGE;
    }
    int words = cmd->name != NULL ? 2 : 1;

    /* 3. settings from the environment (flags win) */
    c.api_explicit = c.server != NULL || c.token_arg != NULL || c.token_file != NULL;
    if (c.server == NULL)
        c.server = env("AEGIS_SERVER");
    if (c.server == NULL)
        c.server = DEFAULT_SERVER;
    if (c.cacert == NULL)
        c.cacert = env("AEGIS_CACERT");
    if (c.token_arg != NULL && c.token_file != NULL)
        return ctl_usage_error(NULL, "--token and --token-file exclude each other");

    /* 4. run */
    c.cmd = cmd;
    int rc = cmd->run(&c, argc - i - words, argv + i + words);
    ctl_client_cleanup(&c);
    if (fflush(stdout) != 0 && rc == CTL_EXIT_OK) {
        ctl_err("cannot write the output");
        rc = CTL_EXIT_LOCAL;
    }
    return rc;
}
