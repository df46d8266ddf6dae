/* aegisctl: the admin and manufacturer CLI of Aegis. main() parses the global options, finds the
 * command in one table and runs it; the commands live in ctl_local.c (data directory) and ctl_api.c
 * (REST API). */
#include "ctl.h"

#include "log.h"
#include "util.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SERVER "https://127.0.0.1:8443"

/* Every command, in the order of `aegisctl --help`. */
static const struct ctl_cmd commands[] = {
    /* --- local --- */
    {"pki", "init", ctl_pki_init, 0, "[--hosts LIST]",
     "create the root CA, the server certificate and missing tenant issuing CAs",
     "Creates <pki_dir>/root.{crt,key} and server.{crt,key} unless they exist (keys mode 0600, "
     "directory\n"
     "0700), migrates the database, then creates an issuing CA (valid 2 years) for every tenant "
     "that has\n"
     "none. Safe to run again.\n"
     "\n"
     "Options:\n"
     "  --hosts LIST   comma-separated DNS names and IP addresses for the server certificate\n"
     "                 (default \"localhost,127.0.0.1,::1\")\n"},
    {"pki", "rotate", ctl_pki_rotate, 0, "TENANT_NAME", "create a new issuing CA for a tenant",
     "Creates a new issuing CA (valid 2 years) for the tenant and makes it the active one. Older "
     "CAs stay\n"
     "listed (and their certificates valid) until they expire.\n"},
    {"tenant", "create", ctl_tenant_create, 0, "NAME [--token-out FILE]",
     "create a tenant, its issuing CA and its first admin token",
     "Creates the tenant NAME (1-64 characters of [a-zA-Z0-9._-]), its issuing CA and an admin "
     "token\n"
     "named \"initial-admin\". The PKI must be initialised first (aegisctl pki init).\n"
     "Prints the token once; with --json prints {\"tenant\": {...}, \"token\": \"aegis_...\"}.\n"
     "\n"
     "Options:\n"
     "  --token-out FILE   write the token to FILE (mode 0600) instead of printing it\n"},
    {"tenant", "list", ctl_tenant_list, 0, "", "list the tenants in the database",
     "Lists every tenant (id, name, created_at) from the database; --json prints the array.\n"},
    {"tenant", "token", ctl_tenant_token, 0,
     "NAME [--role admin|operator|reader] [--name LABEL] [--token-out FILE]",
     "mint an API token for an existing tenant (recovery)",
     "Creates an API token for the tenant NAME directly in the database, for when no admin token "
     "is\n"
     "left (lost or revoked). The token is audited as created by aegisctl. Prints it once; with\n"
     "--json prints {\"tenant\", \"name\", \"role\", \"token\"}.\n"
     "\n"
     "Options:\n"
     "  --role ROLE        admin (default), operator or reader\n"
     "  --name LABEL       the token's name (default \"recovery-admin\")\n"
     "  --token-out FILE   write the token to FILE (mode 0600) instead of printing it\n"},
    {"migrate", NULL, ctl_migrate, 0, "", "apply pending database migrations",
     "Applies the migrations compiled into this binary and prints the schema version. A database\n"
     "newer than this binary is refused (exit 4).\n"},
    /* --- API --- */
    {"tenant", "show", ctl_tenant_show, 1, "", "show the caller's tenant (GET /v1/tenant)",
     "Shows the tenant the token belongs to.\n"},
    {"tokens", "create", ctl_tokens_create, 1, "NAME --role admin|operator|reader",
     "create an API token (admin)",
     "Creates an API token and prints it once. Keep it: only its hash is stored.\n"
     "\n"
     "Options:\n"
     "  --role ROLE   admin, operator or reader (required)\n"},
    {"tokens", "list", ctl_tokens_list, 1, "", "list API tokens (admin)",
     "Lists the tenant's tokens (never their secrets).\n"},
    {"tokens", "revoke", ctl_tokens_revoke, 1, "ID", "revoke an API token (admin)",
     "Revokes the token ID; it answers 401 from its next request on. Idempotent.\n"},
    {"products", "create", ctl_products_create, 1, "NAME [--description D]", "create a product",
     "Creates a product. NAME is 1-128 bytes, unique in the tenant.\n"
     "\n"
     "Options:\n"
     "  --description D   0-1024 bytes\n"},
    {"products", "list", ctl_products_list, 1, "", "list products",
     "Lists every product of the tenant (all pages).\n"},
    {"products", "show", ctl_products_show, 1, "ID", "show a product", "Shows the product ID.\n"},
    {"products", "update", ctl_products_update, 1, "ID [--name N] [--description D]",
     "rename a product or change its description",
     "Changes the name and/or the description of the product ID (at least one option).\n"},
    {"products", "delete", ctl_products_delete, 1, "ID", "delete a product",
     "Deletes the product ID. Refused (409 conflict) while it has device groups.\n"},
    {"groups", "create", ctl_groups_create, 1, "NAME --product ID [--description D]",
     "create a device group in a product",
     "Creates a device group. NAME is unique within the product.\n"
     "\n"
     "Options:\n"
     "  --product ID       the product (required)\n"
     "  --description D    0-1024 bytes\n"},
    {"groups", "list", ctl_groups_list, 1, "[--product ID]", "list device groups",
     "Lists the tenant's device groups (all pages), or those of one product.\n"},
    {"groups", "show", ctl_groups_show, 1, "ID", "show a device group", "Shows the group ID.\n"},
    {"groups", "update", ctl_groups_update, 1, "ID [--name N] [--description D]",
     "rename a device group or change its description",
     "Changes the name and/or the description of the group ID (at least one option).\n"},
    {"groups", "delete", ctl_groups_delete, 1, "ID", "delete a device group",
     "Deletes the group ID. Refused (409 conflict) while devices are in it.\n"},
    {"devices", "import", ctl_devices_import, 1, "FILE [--no-claim] [--group ID]",
     "import device public keys from manufacturing",
     "Imports devices from FILE, a JSON document that is one of:\n"
     "  [\"-----BEGIN PUBLIC KEY-----\\n...\", ...]            PEM strings\n"
     "  [{\"public_key\": \"-----BEGIN PUBLIC KEY-----...\"}, ...]\n"
     "  {\"devices\": [{\"public_key\": ...}, ...], \"claim\": true, \"group_id\": 1}   the API "
     "body\n"
     "Keys are EC P-256 SubjectPublicKeyInfo PEM. The import is atomic: on any bad entry nothing "
     "is\n"
     "stored and every bad entry is listed as \"index: error: message\".\n"
     "\n"
     "Options:\n"
     "  --no-claim   only register the devices, do not claim them into the tenant\n"
     "  --group ID   put the claimed devices into group ID\n"},
    {"devices", "list", ctl_devices_list, 1,
     "[--group ID] [--state S] [--limit N] [--cursor C] [--all]", "list devices",
     "Lists devices ordered by id, one page (default 100) unless --all.\n"
     "\n"
     "Options:\n"
     "  --group ID    only devices in group ID\n"
     "  --state S     unclaimed, active or blocked\n"
     "  --limit N     page size, 1-1000\n"
     "  --cursor C    start at this cursor (next_cursor of a previous page)\n"
     "  --all         follow next_cursor to the last page\n"},
    {"devices", "show", ctl_devices_show, 1, "ID", "show a device",
     "Shows the device ID (64 hex characters: SHA-256 of its public key).\n"},
    {"devices", "claim", ctl_devices_claim, 1, "ID [--group ID]",
     "claim an imported device into the tenant",
     "Claims the device ID (idempotent for the owner).\n"
     "\n"
     "Options:\n"
     "  --group ID   put it into group ID\n"},
    {"devices", "move", ctl_devices_move, 1, "ID --group ID|none", "move a device to another group",
     "Moves the claimed device ID into a group, or out of any group with --group none.\n"},
    {"devices", "block", ctl_devices_block, 1, "ID", "block a device",
     "Blocks the device ID: it is denied attestation and device mTLS from its next request on.\n"},
    {"devices", "unblock", ctl_devices_unblock, 1, "ID", "unblock a device",
     "Unblocks the device ID.\n"},
    {"refvals", "list", ctl_refvals_list, CTL_BOTH, "",
     "list reference values (platform: local; platform + tenant: API)",
     "Lists known-good measurements. With --data-dir or --config (and no --server, --token,\n"
     "--token-file) it reads the platform's values (bootloader, os) from the database; otherwise "
     "it\n"
     "calls the API, which lists the platform's values and the tenant's (app).\n"},
    {"refvals", "add", ctl_refvals_add, CTL_BOTH,
     "--stage bootloader|os|app --component C --version V --svn N --digest HEX",
     "add a reference value (bootloader, os: local; app: API)",
     "Adds a known-good measurement. Platform values (--stage bootloader or os) are the service\n"
     "operator's and are added on the data directory, like `tenant create`; app values (--stage\n"
     "app) are the tenant's and are added through the API (operator role).\n"
     "\n"
     "Options:\n"
     "  --stage S       bootloader, os or app (required)\n"
     "  --component C   1-64 characters of [a-z0-9._-] (required)\n"
     "  --version V     1-32 printable ASCII characters, no spaces (required)\n"
     "  --svn N         security version, 0-4294967295 (required)\n"
     "  --digest HEX    SHA-256 of the image, 64 hex characters (required)\n"},
    {"refvals", "remove", ctl_refvals_remove, CTL_BOTH, "ID",
     "remove a reference value (platform: local; app: API)",
     "Removes the reference value ID: a platform value with --data-dir or --config (and no\n"
     "--server, --token, --token-file), else one of the tenant's values through the API.\n"
     "Devices measuring it fail attestation (unknown_measurement) from their next attempt on.\n"},
    {"minimums", "list", ctl_minimums_list, 1, "", "list security minimums",
     "Lists the tenant's minimum security versions per component.\n"},
    {"minimums", "set", ctl_minimums_set, 1, "COMPONENT N",
     "set the minimum security version of a component",
     "Sets the minimum svn of COMPONENT to N (0-4294967295). Devices measuring a lower svn fail\n"
     "attestation (rollback) from their next attempt on.\n"},
    {"minimums", "remove", ctl_minimums_remove, 1, "COMPONENT",
     "remove the minimum security version of a component",
     "Removes the minimum svn of COMPONENT.\n"},
    {"attestations", "list", ctl_attestations_list, 1,
     "[--device ID] [--result pass|fail] [--limit N] [--cursor C] [--all]",
     "list attestation attempts, newest first",
     "Lists attestation attempts of the tenant's devices, newest first, one page (default 100)\n"
     "unless --all.\n"
     "\n"
     "Options:\n"
     "  --device ID     only this device's attempts\n"
     "  --result R      pass or fail\n"
     "  --limit N       page size, 1-1000\n"
     "  --cursor C      start at this cursor\n"
     "  --all           follow next_cursor to the last page\n"},
    {"failures", "buckets", ctl_failures_buckets, 1,
     "[--component C] [--version V] [--product ID] [--group ID] [--since T] [--until T] "
     "[--sort count|devices|recent] [--limit N] [--cursor C] [--all]",
     "list crash buckets (failures grouped by signature)",
     "Lists the tenant's crash buckets: crashes with the same component, reason, pc and first "
     "three\n"
     "return addresses. Without filters (or with --component only) the figures are all-time; with\n"
     "--version, --product, --group, --since or --until they are counted over the stored reports\n"
     "that match (reports older than the retention are gone).\n"
     "\n"
     "Options:\n"
     "  --component C   only crashes of this component\n"
     "  --version V     only crashes of this image version\n"
     "  --product ID    only crashes of devices in this product\n"
     "  --group ID      only crashes of devices in this device group\n"
     "  --since T       received at or after T (RFC 3339 UTC, e.g. 2026-11-22T10:00:00Z)\n"
     "  --until T       received before T\n"
     "  --sort S        count (most reports first, default), devices or recent\n"
     "  --limit N       page size, 1-1000\n"
     "  --cursor C      start at this cursor\n"
     "  --all           follow next_cursor to the last page\n"},
    {"failures", "show", ctl_failures_show, 1, "ID", "show a crash bucket",
     "Shows the bucket ID: its signature and figures, its counts per image version, and up to 10\n"
     "of its reports, newest first.\n"},
    {"failures", "device", ctl_failures_device, 1,
     "ID [--type crash|heartbeat|reboot] [--limit N] [--cursor C] [--all]",
     "list a device's reports, newest first",
     "Lists the reports of the device ID (64 hex characters), newest first, one page (default "
     "100)\n"
     "unless --all, then its counters: reports stored, reports it dropped (queue full), last "
     "upload.\n"
     "\n"
     "Options:\n"
     "  --type T      crash, heartbeat or reboot\n"
     "  --limit N     page size, 1-1000\n"
     "  --cursor C    start at this cursor\n"
     "  --all         follow next_cursor to the last page\n"},
    {"failures", "rates", ctl_failures_rates, 1,
     "[--component C] [--since T] [--until T] [--granularity hour|day]",
     "crash rates per image version (crashes per device-hour)",
     "Shows, for the window (default: the last 7 days), the device-hours, crashes and crash rate "
     "of\n"
     "every image version and of every version per hour or day, and the fleet's crash-free\n"
     "device-hours. Device-hours come from the devices' heartbeats.\n"
     "\n"
     "Options:\n"
     "  --component C     only this component\n"
     "  --since T         from T (RFC 3339 UTC)\n"
     "  --until T         to T (default now)\n"
     "  --granularity G   hour (windows up to 31 days) or day (default)\n"},
    {"failures", "export", ctl_failures_export, 1, "--format csv|jsonl [--since T] [--until T]",
     "export every report (streamed to stdout)",
     "Writes the tenant's stored reports, in the order received, to stdout as CSV (a header line,\n"
     "then one line per report; columns in docs/api.md) or JSON lines. The export is streamed: "
     "use\n"
     "  aegisctl failures export --format csv > reports.csv\n"
     "\n"
     "Options:\n"
     "  --format F    csv or jsonl (required)\n"
     "  --since T     received at or after T (RFC 3339 UTC)\n"
     "  --until T     received before T\n"},
    {"failures", "flags", ctl_failures_flags, 1, "[--limit N] [--cursor C] [--all]",
     "list emerging-problem flags, newest first",
     "Lists the flags raised by the service: new_bucket (a new crash bucket seen on more than\n"
     "flag_new_bucket_devices devices within its first hour) and rate_regression (an image "
     "version\n"
     "whose crash rate exceeds its predecessor's by flag_rate_factor_pct percent).\n"},
    {"audit", "list", ctl_audit_list, 1, "[--limit N] [--cursor C] [--all]",
     "list the audit log, newest first (admin)",
     "Lists audit entries, newest first, one page (default 100) unless --all.\n"
     "\n"
     "Options:\n"
     "  --limit N     page size, 1-1000\n"
     "  --cursor C    start at this cursor\n"
     "  --all         follow next_cursor to the last page\n"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

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
print_cmd_name(FILE *f, const struct ctl_cmd *cmd)
{
    if (cmd->name != NULL)
        fprintf(f, "%s %s", cmd->group, cmd->name);
    else
        fprintf(f, "%s", cmd->group);
}

static void
print_cmd_usage(FILE *f, const struct ctl_cmd *cmd)
{
    fprintf(f, "usage: aegisctl [GLOBAL OPTIONS] ");
    print_cmd_name(f, cmd);
    if (cmd->usage[0] != '\0')
        fprintf(f, " %s", cmd->usage);
    fprintf(f, "\n");
}

static void
print_cmd_help(FILE *f, const struct ctl_cmd *cmd)
{
    print_cmd_usage(f, cmd);
    fprintf(f, "\n%s.\n\n%s", cmd->summary, cmd->help);
    fprintf(f, "\nSee aegisctl --help for the global options.\n");
}

static void
print_command_list(FILE *f, const char *group)
{
    for (int api = 0; api <= 1; api++) {
        int header = 0;
        for (size_t i = 0; i < NCOMMANDS; i++) {
            const struct ctl_cmd *cmd = &commands[i];
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

void
ctl_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

int
ctl_usage_error(struct ctl *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (c != NULL && c->cmd != NULL) {
        print_cmd_usage(stderr, c->cmd);
        fprintf(stderr, "(aegisctl ");
        print_cmd_name(stderr, c->cmd);
        fprintf(stderr, " --help for details)\n");
    } else {
        fprintf(stderr, "usage: aegisctl [GLOBAL OPTIONS] COMMAND [ARGS] (aegisctl --help)\n");
    }
    return CTL_EXIT_USAGE;
}

int
ctl_parse_exit(int parse_rc)
{
    return parse_rc > 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
}

int
ctl_parse(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts, const char **pos,
          int minpos, int maxpos, int *npos)
{
    int n = 0, only_pos = 0;
    unsigned seen = 0; /* bit i: opts[i] given */
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0') {
            if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                print_cmd_help(stdout, c->cmd);
                return 1;
            }
            if (strcmp(a, "--json") == 0) {
                c->json = 1;
                continue;
            }
            if (strncmp(a, "--json=", 7) == 0) {
                ctl_usage_error(c, "option --json takes no value");
                return -1;
            }
            const char *eq = strchr(a, '=');
            size_t nl = eq != NULL ? (size_t)(eq - a) : strlen(a);
            int k = -1;
            for (int j = 0; opts != NULL && opts[j].name != NULL; j++) {
                if (strlen(opts[j].name) == nl && strncmp(opts[j].name, a, nl) == 0) {
                    k = j;
                    break;
                }
            }
            if (k < 0) {
                ctl_usage_error(c, "unknown option '%.*s'", (int)(nl > 64 ? 64 : nl), a);
                return -1;
            }
            if (k < 32 && (seen & (1u << k)) != 0) {
                ctl_usage_error(c, "option %s given twice", opts[k].name);
                return -1;
            }
            if (k < 32)
                seen |= 1u << k;
            if (opts[k].kind == CTL_OPT_FLAG) {
                if (eq != NULL) {
                    ctl_usage_error(c, "option %s takes no value", opts[k].name);
                    return -1;
                }
                *opts[k].flag = 1;
                continue;
            }
            const char *val = eq != NULL ? eq + 1 : NULL;
            if (val == NULL) {
                if (i + 1 >= argc) {
                    ctl_usage_error(c, "option %s needs a value", opts[k].name);
                    return -1;
                }
                val = argv[++i];
            }
            *opts[k].str = val;
            continue;
        }
        if (n >= maxpos) {
            ctl_usage_error(c, "unexpected argument '%.64s'", a);
            return -1;
        }
        pos[n++] = a;
    }
    if (n < minpos) {
        ctl_usage_error(c, "missing argument");
        return -1;
    }
    if (npos != NULL)
        *npos = n;
    return 0;
}

int
ctl_int(struct ctl *c, const char *what, const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (util_parse_i64(s, min, max, out) != 0) {
        ctl_usage_error(c, "%s: expected an integer from %lld to %lld, got '%.32s'", what,
                        (long long)min, (long long)max, s);
        return -1;
    }
    return 0;
}

int
ctl_local_mode(const struct ctl *c)
{
    return (c->data_dir != NULL || c->config_path != NULL) && !c->api_explicit;
}

int
ctl_config(struct ctl *c)
{
    char err[512];
    if (c->cfg_ready)
        return 0;
    config_defaults(&c->cfg);
    if (c->config_path != NULL && config_load_file(&c->cfg, c->config_path, err, sizeof(err)) != 0)
        goto fail;
    if (c->data_dir != NULL &&
        config_set(&c->cfg, "data_dir", c->data_dir, "--data-dir", err, sizeof(err)) != 0)
        goto fail;
    if (config_finalize(&c->cfg, err, sizeof(err)) != 0)
        goto fail;
    c->cfg_ready = 1;
    return 0;
fail:
    ctl_err("%s", err);
    return -1;
}

/* --- output --- */

void
ctl_print_json(const json_t *v)
{
    json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    fputc('\n', stdout);
}

void
ctl_json_forget(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_string(v))
        sodium_memzero((char *)json_string_value(v), json_string_length(v));
}

/* Number of characters (UTF-8 code points) in s. */
static size_t
width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

/* Bytes of a character at p that must not reach a terminal as it is, else 0: C0 and C1 controls
 * and DEL (escape sequences), and the bidirectional controls and line separators that make a
 * table show something other than its text (U+061C, U+200E-F, U+2028-E, U+2066-9), and bytes
 * that are not UTF-8. */
static size_t
unsafe_len(const unsigned char *p)
{
    if (p[0] < 0x20 || p[0] == 0x7f || util_utf8_char_len((const char *)p) == 0)
        return 1; /* a control, or a byte of no well-formed character (a lone 0x9b is a CSI) */
    if ((p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) || (p[0] == 0xd8 && p[1] == 0x9c))
        return 2;
    if (p[0] == 0xe2 && p[1] == 0x80 &&
        (p[2] == 0x8e || p[2] == 0x8f || (p[2] >= 0xa8 && p[2] <= 0xae)))
        return 3;
    if (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
        return 3;
    return 0;
}

void
ctl_sanitize(char *s)
{
    unsigned char *r = (unsigned char *)s, *w = r;
    while (*r != '\0') {
        size_t n = unsafe_len(r);
        if (n > 0) {
            *w++ = '?';
            r += n;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* Cuts s (in place) to at most max characters, ending in "..." when cut. */
static void
truncate_to(char *s, size_t max)
{
    if (max < 4 || width(s) <= max)
        return;
    size_t chars = 0;
    char *p = s;
    for (; *p; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80) {
            if (chars == max - 3)
                break;
            chars++;
        }
    }
    memcpy(p, "...", 4);
}

/* The text of a JSON value for display (malloc'd), unsanitized; "-" for absent or null. */
static char *
value_text(const json_t *v)
{
    char buf[64];
    if (v == NULL || json_is_null(v))
        return strdup("-");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return strdup(buf);
    }
    if (json_is_real(v)) {
        snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        return strdup(buf);
    }
    if (json_is_boolean(v))
        return strdup(json_is_true(v) ? "true" : "false");
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

void
ctl_print_table(const json_t *items, const struct ctl_col *cols)
{
    size_t ncols = 0, nrows = json_is_array(items) ? json_array_size(items) : 0;
    while (cols[ncols].header != NULL)
        ncols++;
    size_t *w = calloc(ncols + 1, sizeof(*w));
    char **cells = calloc(nrows * ncols + 1, sizeof(*cells));
    if (w == NULL || cells == NULL) {
        ctl_err("out of memory");
        goto out;
    }
    for (size_t j = 0; j < ncols; j++)
        w[j] = width(cols[j].header);
    for (size_t i = 0; i < nrows; i++) {
        const json_t *row = json_array_get(items, i);
        for (size_t j = 0; j < ncols; j++) {
            char *t = value_text(json_is_object(row) ? json_object_get(row, cols[j].key) : NULL);
            if (t == NULL) {
                ctl_err("out of memory");
                goto out;
            }
            ctl_sanitize(t);
            if (cols[j].max > 0)
                truncate_to(t, cols[j].max);
            cells[i * ncols + j] = t;
            if (width(t) > w[j])
                w[j] = width(t);
        }
    }
    for (size_t j = 0; j < ncols; j++) {
        if (j + 1 < ncols)
            printf("%s%*s  ", cols[j].header, (int)(w[j] - width(cols[j].header)), "");
        else
            printf("%s\n", cols[j].header);
    }
    for (size_t i = 0; i < nrows; i++) {
        for (size_t j = 0; j < ncols; j++) {
            const char *t = cells[i * ncols + j];
            if (j + 1 < ncols)
                printf("%s%*s  ", t, (int)(w[j] - width(t)), "");
            else
                printf("%s\n", t);
        }
    }
out:
    if (cells != NULL)
        for (size_t i = 0; i < nrows * ncols; i++)
            free(cells[i]);
    free(cells);
    free(w);
}

void
ctl_print_object(const json_t *obj)
{
    const char *key;
    const json_t *v;
    size_t kw = 0;
    if (!json_is_object(obj)) {
        ctl_print_json(obj);
        return;
    }
    json_object_foreach((json_t *)obj, key, v)
    {
        if (strlen(key) > kw)
            kw = strlen(key);
    }
    json_object_foreach((json_t *)obj, key, v)
    {
        char k[128];
        snprintf(k, sizeof(k), "%s", key);
        ctl_sanitize(k);
        char *t = value_text(v);
        if (t == NULL) {
            ctl_err("out of memory");
            return;
        }
        if (json_is_string(v) && strchr(t, '\n') != NULL) {
            printf("%s:\n", k);
            char *save = NULL;
            for (char *line = strtok_r(t, "\n", &save); line != NULL;
                 line = strtok_r(NULL, "\n", &save)) {
                ctl_sanitize(line);
                printf("    %s\n", line);
            }
        } else {
            ctl_sanitize(t);
            if (t[0] == '\0')
                printf("%s:\n", k);
            else
                printf("%s:%*s %s\n", k, (int)(kw - strlen(key)), "", t);
        }
        free(t);
    }
}

/* --- main --- */

static const struct ctl_cmd *
find_command(const char *group, const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].group, group) != 0)
            continue;
        if (commands[i].name == NULL || (name != NULL && strcmp(commands[i].name, name) == 0))
            return &commands[i];
    }
    return NULL;
}

static int
group_exists(const char *group)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].group, group) == 0)
            return 1;
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
    ctl_api_cleanup(&c);
    if (fflush(stdout) != 0 && rc == CTL_EXIT_OK) {
        ctl_err("cannot write the output");
        rc = CTL_EXIT_LOCAL;
    }
    return rc;
}
