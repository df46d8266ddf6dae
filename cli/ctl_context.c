#include "ctl_context.h"

#include "util.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONTEXT_FILE_MAX ((size_t)16 * 1024)

static const char *
env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

int
ctl_context_path(const char *name, char *buf, size_t len)
{
    const char *xdg = env("XDG_CONFIG_HOME"), *home = env("HOME");
    int n;
    if (xdg != NULL && xdg[0] == '/') /* the XDG spec ignores a relative value */
        n = snprintf(buf, len, "%s/aegis%s%s", xdg, name[0] ? "/" : "", name);
    else if (home != NULL)
        n = snprintf(buf, len, "%s/.config/aegis%s%s", home, name[0] ? "/" : "", name);
    else {
        ctl_err("cannot find the context directory: neither XDG_CONFIG_HOME nor HOME is set");
        return -1;
    }
    if (n < 0 || (size_t)n >= len) {
        ctl_err("the context directory's path is too long");
        return -1;
    }
    return 0;
}

/* Trims spaces and tabs at both ends of s, in place. */
static char *
trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* One "key = value" line into ctx; seen has a bit per key. Returns 0, or -1 with *why. */
static int
parse_line(struct ctl_context *ctx, char *line, unsigned *seen, const char **why)
{
    struct {
        const char *key;
        char *dst;
    } keys[] = {{"server", ctx->server}, {"cacert", ctx->cacert}, {"token_file", ctx->token_file}};
    char *eq = strchr(line, '=');
    if (eq == NULL) {
        *why = "expected key = value";
        return -1;
    }
    *eq = '\0';
    const char *key = trim(line), *val = trim(eq + 1);
    for (unsigned k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        if (strcmp(key, keys[k].key) != 0)
            continue;
        if (*seen & (1u << k)) {
            *why = "a key given twice";
            return -1;
        }
        if (val[0] == '\0' || strlen(val) >= CTL_CONTEXT_VALUE_MAX) {
            *why = "an empty or too long value";
            return -1;
        }
        *seen |= 1u << k;
        memcpy(keys[k].dst, val, strlen(val) + 1);
        return 0;
    }
    *why = "unknown key (expected server, cacert, token_file)";
    return -1;
}

int
ctl_context_load(struct ctl_context *ctx)
{
    size_t len = 0;
    unsigned seen = 0;
    int rc = -1, lineno = 0;
    memset(ctx, 0, sizeof(*ctx));
    if (ctl_context_path("config", ctx->path, sizeof(ctx->path)) != 0)
        return -1;
    char *text = util_read_file(ctx->path, CONTEXT_FILE_MAX, &len);
    if (text == NULL) {
        if (errno == ENOENT)
            return 0;
        ctl_err("cannot read the context file %s", ctx->path);
        return -1;
    }
    for (char *line = text, *next; line != NULL && *line != '\0'; line = next) {
        const char *why = NULL;
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        lineno++;
        char *t = trim(line);
        if (t[0] == '\0' || t[0] == '#')
            continue;
        if (parse_line(ctx, t, &seen, &why) != 0) {
            ctl_err("%s:%d: %s", ctx->path, lineno, why);
            goto out;
        }
    }
    ctx->present = 1;
    rc = 0;
out:
    free(text);
    return rc;
}

/* mkdir path (0700) unless it exists as a directory. */
static int
make_dir(const char *path)
{
    struct stat st;
    if (mkdir(path, 0700) == 0 || (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
        return 0;
    ctl_err("cannot make the directory %s: %s", path, strerror(errno));
    return -1;
}

int
ctl_context_mkdir(void)
{
    char dir[PATH_MAX];
    if (ctl_context_path("", dir, sizeof(dir)) != 0)
        return -1;
    /* the parent (~/.config) may be missing on a fresh account */
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        int r = make_dir(dir);
        *slash = '/';
        if (r != 0)
            return -1;
    }
    if (make_dir(dir) != 0)
        return -1;
    if (chmod(dir, 0700) != 0) {
        ctl_err("cannot restrict %s to its owner: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int
ctl_context_save(const struct ctl_context *ctx)
{
    char text[4 * CTL_CONTEXT_VALUE_MAX + 256];
    assert(ctx->path[0] != '\0' && ctx->server[0] != '\0');
    if (ctl_context_mkdir() != 0)
        return -1;
    int n = snprintf(text, sizeof(text),
                     "# aegisctl context (aegisctl login); the token stays in token_file\n"
                     "server = %s\n",
                     ctx->server);
    if (ctx->cacert[0] != '\0')
        n += snprintf(text + n, sizeof(text) - (size_t)n, "cacert = %s\n", ctx->cacert);
    if (ctx->token_file[0] != '\0')
        n += snprintf(text + n, sizeof(text) - (size_t)n, "token_file = %s\n", ctx->token_file);
    if (util_write_file(ctx->path, text, (size_t)n, 0600) != 0) {
        ctl_err("cannot write %s: %s", ctx->path, strerror(errno));
        return -1;
    }
    return 0;
}

/* 1 when URLs a and b are the same but for trailing slashes. */
static int
same_server(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 0 && a[la - 1] == '/')
        la--;
    while (lb > 0 && b[lb - 1] == '/')
        lb--;
    return la == lb && strncmp(a, b, la) == 0;
}

int
ctl_context_settings(struct ctl *c, const struct ctl_context *ctx, struct ctl_settings *s)
{
    memset(s, 0, sizeof(*s));
    if (ctx != NULL && !ctx->present)
        ctx = NULL;
    if (c->token_arg != NULL && c->token_file != NULL)
        return ctl_usage_error(c, "--token and --token-file exclude each other");
    if ((s->server = c->server) != NULL)
        s->server_from = "--server";
    else if ((s->server = env("AEGIS_SERVER")) != NULL)
        s->server_from = "AEGIS_SERVER";
    else if (ctx != NULL && ctx->server[0] != '\0')
        s->server = ctx->server, s->server_from = "context";
    else
        s->server = CTL_DEFAULT_SERVER, s->server_from = "default";
    /* the context's CA and token belong to the context's server */
    if (ctx != NULL && !same_server(ctx->server, s->server))
        ctx = NULL;

    if ((s->cacert = c->cacert) != NULL)
        s->cacert_from = "--cacert";
    else if ((s->cacert = env("AEGIS_CACERT")) != NULL)
        s->cacert_from = "AEGIS_CACERT";
    else if (ctx != NULL && ctx->cacert[0] != '\0')
        s->cacert = ctx->cacert, s->cacert_from = "context";
    else
        s->cacert = NULL, s->cacert_from = "default";

    if ((s->token_arg = c->token_arg) != NULL)
        s->token_from = "--token";
    else if ((s->token_file = c->token_file) != NULL)
        s->token_from = "--token-file";
    else if ((s->token_arg = env("AEGIS_TOKEN")) != NULL)
        s->token_from = "AEGIS_TOKEN";
    else if (ctx != NULL && ctx->token_file[0] != '\0')
        s->token_file = ctx->token_file, s->token_from = "context";
    return CTL_EXIT_OK;
}
