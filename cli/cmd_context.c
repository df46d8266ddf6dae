#include "cmd_context.h"

#include "ctl_args.h"
#include "ctl_client.h"
#include "ctl_context.h"
#include "util.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define TOKEN_MAX 4096

/* The absolute path of an existing file into out (CTL_CONTEXT_VALUE_MAX bytes): the context is
 * used from any directory. Returns 0, or CTL_EXIT_LOCAL (printed). */
static int
absolute(const char *what, const char *file, char *out)
{
    char buf[PATH_MAX];
    if (realpath(file, buf) == NULL || access(buf, R_OK) != 0) {
        ctl_err("%s: cannot read %s: %s", what, file, strerror(errno));
        return CTL_EXIT_LOCAL;
    }
    size_t n = strlen(buf);
    if (n >= CTL_CONTEXT_VALUE_MAX) {
        ctl_err("%s: the path is too long", what);
        return CTL_EXIT_LOCAL;
    }
    memcpy(out, buf, n + 1);
    return CTL_EXIT_OK;
}

/* The token's first line from stdin into buf (TOKEN_MAX bytes), without echo on a terminal. Returns
 * 0, or CTL_EXIT_LOCAL (printed). */
static int
read_stdin_token(char *buf)
{
    struct termios old, quiet;
    int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fprintf(stderr, "API token: ");
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *got = fgets(buf, TOKEN_MAX, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (got != NULL)
        buf[strcspn(buf, "\r\n")] = '\0';
    if (got == NULL || buf[0] == '\0') {
        ctl_err("no token on stdin (give --token-file F, or the token on stdin)");
        return CTL_EXIT_LOCAL;
    }
    return CTL_EXIT_OK;
}

/* Copies a token read from stdin into <context dir>/token (0600); its path into ctx->token_file. */
static int
store_token(struct ctl_context *ctx, const char *token)
{
    char path[PATH_MAX], *text = NULL;
    int rc = CTL_EXIT_LOCAL;
    if (ctl_context_path("token", path, sizeof(path)) != 0 || ctl_context_mkdir() != 0)
        return rc;
    size_t len = strlen(token);
    if ((text = malloc(len + 2)) == NULL) {
        ctl_err("out of memory");
        return rc;
    }
    memcpy(text, token, len);
    memcpy(text + len, "\n", 2);
    if (util_write_file(path, text, len + 1, 0600) != 0) {
        ctl_err("cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    if (strlen(path) >= sizeof(ctx->token_file)) {
        ctl_err("the token file's path is too long");
        goto out;
    }
    memcpy(ctx->token_file, path, strlen(path) + 1);
    rc = CTL_EXIT_OK;
out:
    sodium_memzero(text, len + 1);
    free(text);
    return rc;
}

/* Checks the settings against the server (GET /v1/tenant), prints who we are. */
static int
check_login(struct ctl *c)
{
    json_t *t = NULL;
    int rc = ctl_request_object(c, "GET", "/v1/tenant", NULL, &t);
    if (rc == CTL_EXIT_OK) {
        const char *name = json_string_value(json_object_get(t, "name"));
        char safe[129];
        snprintf(safe, sizeof(safe), "%s", name != NULL ? name : "?");
        ctl_sanitize(safe);
        printf("logged in to %s as tenant %s\n", c->server, safe);
    }
    json_decref(t);
    return rc;
}

static int
ctl_login(struct ctl *c, int argc, char **argv)
{
    const char *server = NULL, *cacert = NULL, *token_file = NULL;
    const struct ctl_opt opts[] = {{"--server", CTL_OPT_STR, &server, NULL},
                                   {"--cacert", CTL_OPT_STR, &cacert, NULL},
                                   {"--token-file", CTL_OPT_STR, &token_file, NULL},
                                   {NULL, 0, NULL, NULL}};
    struct ctl_context ctx;
    char token[TOKEN_MAX];
    int rc, pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (server == NULL)
        return ctl_usage_error(c, "--server is required");
    if (c->token_arg != NULL)
        return ctl_usage_error(c, "login reads the token from --token-file F or from stdin, never "
                                  "from the command line");
    memset(&ctx, 0, sizeof(ctx));
    token[0] = '\0';
    if (ctl_context_path("config", ctx.path, sizeof(ctx.path)) != 0)
        return CTL_EXIT_LOCAL;
    size_t sl = strlen(server);
    while (sl > 0 && server[sl - 1] == '/')
        sl--;
    if (sl == 0 || sl >= sizeof(ctx.server))
        return ctl_usage_error(c, "--server: expected an https:// URL");
    memcpy(ctx.server, server, sl);
    if ((cacert != NULL && (rc = absolute("--cacert", cacert, ctx.cacert)) != 0) ||
        (token_file != NULL && (rc = absolute("--token-file", token_file, ctx.token_file)) != 0))
        return rc;
    if (token_file == NULL && (rc = read_stdin_token(token)) != 0)
        return rc;
    /* the same settings the later commands will use, tried once before they are stored */
    c->server = ctx.server;
    c->cacert = ctx.cacert[0] != '\0' ? ctx.cacert : NULL;
    c->token_file = token_file != NULL ? ctx.token_file : NULL;
    c->token_arg = token_file == NULL ? token : NULL;
    rc = check_login(c);
    if (rc == CTL_EXIT_OK && token_file == NULL)
        rc = store_token(&ctx, token);
    if (rc == CTL_EXIT_OK && ctl_context_save(&ctx) != 0)
        rc = CTL_EXIT_LOCAL;
    if (rc == CTL_EXIT_OK)
        printf("context saved in %s\n", ctx.path);
    c->token_arg = NULL;
    sodium_memzero(token, sizeof(token));
    return rc;
}

static int
ctl_logout(struct ctl *c, int argc, char **argv)
{
    struct ctl_context ctx;
    char stored[PATH_MAX];
    int pr = ctl_parse(c, argc, argv, NULL, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (ctl_context_load(&ctx) != 0 || ctl_context_path("token", stored, sizeof(stored)) != 0)
        return CTL_EXIT_LOCAL;
    if (!ctx.present) {
        printf("not logged in (no %s)\n", ctx.path);
        return CTL_EXIT_OK;
    }
    /* the token file is removed only when login made it (a copy of a token read from stdin) */
    if (strcmp(ctx.token_file, stored) == 0 && unlink(stored) != 0 && errno != ENOENT) {
        ctl_err("cannot remove %s: %s", stored, strerror(errno));
        return CTL_EXIT_LOCAL;
    }
    if (unlink(ctx.path) != 0) {
        ctl_err("cannot remove %s: %s", ctx.path, strerror(errno));
        return CTL_EXIT_LOCAL;
    }
    printf("logged out: removed %s%s%s\n", ctx.path,
           strcmp(ctx.token_file, stored) == 0 ? " and " : "",
           strcmp(ctx.token_file, stored) == 0 ? stored : "");
    return CTL_EXIT_OK;
}

/* {"value": v, "from": from} */
static json_t *
setting(const char *v, const char *from)
{
    return json_pack("{s:s?, s:s?}", "value", v, "from", from);
}

static int
ctl_config_view(struct ctl *c, int argc, char **argv)
{
    struct ctl_context ctx;
    struct ctl_settings set;
    int rc, pr = ctl_parse(c, argc, argv, NULL, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (ctl_context_load(&ctx) != 0)
        return CTL_EXIT_LOCAL;
    if ((rc = ctl_context_settings(c, &ctx, &set)) != CTL_EXIT_OK)
        return rc;
    const char *token = set.token_file != NULL  ? set.token_file
                        : set.token_arg != NULL ? "(given as text)"
                                                : NULL;
    json_t *o = json_pack(
        "{s:s, s:b, s:{s:s?, s:s?, s:s?}, s:{s:o, s:o, s:o}}", "context_file", ctx.path, "present",
        ctx.present, "context", "server", ctx.server[0] ? ctx.server : NULL, "cacert",
        ctx.cacert[0] ? ctx.cacert : NULL, "token_file", ctx.token_file[0] ? ctx.token_file : NULL,
        "effective", "server", setting(set.server, set.server_from), "cacert",
        setting(set.cacert, set.cacert_from), "token", setting(token, set.token_from));
    if (o == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    if (c->json) {
        ctl_print_json(o);
        json_decref(o);
        return CTL_EXIT_OK;
    }
    printf("context file: %s%s\n", ctx.path, ctx.present ? "" : " (none: aegisctl login)");
    if (ctx.present)
        printf("  server = %s\n  cacert = %s\n  token_file = %s\n", ctx.server,
               ctx.cacert[0] ? ctx.cacert : "-", ctx.token_file[0] ? ctx.token_file : "-");
    printf("in effect:\n  server  %s (%s)\n  cacert  %s (%s)\n  token   %s%s%s%s\n", set.server,
           set.server_from, set.cacert != NULL ? set.cacert : "<pki_dir>/root.crt or the system's",
           set.cacert_from, token != NULL ? token : "none", set.token_from ? " (" : "",
           set.token_from ? set.token_from : "", set.token_from ? ")" : "");
    json_decref(o);
    return CTL_EXIT_OK;
}

const struct ctl_cmd cmd_context_cmds[] = {
    {"login", NULL, ctl_login, 1, "--server URL [--cacert FILE] [--token-file F]",
     "store the server, its CA and the token's file for later commands",
     "Checks the settings against the server (GET /v1/tenant) and stores them as the context:\n"
     "$XDG_CONFIG_HOME/aegis/config (default ~/.config/aegis/config; directory 0700, file 0600),\n"
     "key = value lines: server, cacert, token_file. The token itself is never stored there nor\n"
     "taken from the command line: without --token-file it is read from stdin (not echoed on a\n"
     "terminal) and copied into the token file next to the config (0600).\n"
     "Later commands use the context when no --server, --cacert, --token-file or --token and no\n"
     "AEGIS_SERVER, AEGIS_CACERT or AEGIS_TOKEN say otherwise; the context's CA and token are "
     "used\n"
     "only with the context's server. A failed check stores nothing (exit 5: the token was\n"
     "refused).\n"
     "\n"
     "Options:\n"
     "  --server URL      the API's base URL (https://)\n"
     "  --cacert FILE     CA certificate(s) of the server (stored as an absolute path)\n"
     "  --token-file F    the file that holds the API token (stored as an absolute path)\n",
     NULL},
    {"logout", NULL, ctl_logout, 0, "", "forget the stored context",
     "Removes the context file, and the token file when login made it (a token read from stdin).\n",
     NULL},
    {"config", "view", ctl_config_view, 0, "", "show the stored context and the settings in effect",
     "Shows the context file's settings and, for the server, the CA and the token, the value in\n"
     "effect and where it comes from (an option, the environment, the context, the default). The\n"
     "token itself is never shown.\n",
     NULL},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
