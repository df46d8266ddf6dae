#include "ctl.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
verr(const char *fmt, va_list ap)
{
    fprintf(stderr, "error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
}

void
ctl_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(fmt, ap);
    va_end(ap);
}

void
ctl_cmd_name(FILE *f, const struct ctl_cmd *cmd)
{
    if (cmd->name != NULL)
        fprintf(f, "%s %s", cmd->group, cmd->name);
    else
        fprintf(f, "%s", cmd->group);
}

void
ctl_cmd_usage(FILE *f, const struct ctl_cmd *cmd)
{
    fprintf(f, "usage: aegisctl [GLOBAL OPTIONS] ");
    ctl_cmd_name(f, cmd);
    if (cmd->usage[0] != '\0')
        fprintf(f, " %s", cmd->usage);
    fprintf(f, "\n");
}

void
ctl_cmd_help(FILE *f, const struct ctl_cmd *cmd)
{
    ctl_cmd_usage(f, cmd);
    fprintf(f, "\n%s.\n\n%s", cmd->summary, cmd->help);
    fprintf(f, "\nSee aegisctl --help for the global options.\n");
}

int
ctl_usage_error(struct ctl *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(fmt, ap);
    va_end(ap);
    if (c != NULL && c->cmd != NULL) {
        ctl_cmd_usage(stderr, c->cmd);
        fprintf(stderr, "(aegisctl ");
        ctl_cmd_name(stderr, c->cmd);
        fprintf(stderr, " --help for details)\n");
    } else {
        fprintf(stderr, "usage: aegisctl [GLOBAL OPTIONS] COMMAND [ARGS] (aegisctl --help)\n");
    }
    return CTL_EXIT_USAGE;
}

int
ctl_local_mode(const struct ctl *c)
{
    return (c->data_dir != NULL || c->config_path != NULL) && !c->api_explicit;
}

/* Root working on a data directory that belongs to another user (the service's, e.g. aegis under
 * systemd) would leave root-owned 0600 files there (a new CA key, a TLS key, a restored database)
 * that the service cannot read: an outage at its next use. So root is refused there, with the fix.
 * 0, or -1 (printed). */
static int
check_owner(const struct ctl *c)
{
    struct stat st;
    if (geteuid() != 0 || stat(c->cfg.data_dir, &st) != 0 || st.st_uid == 0)
        return 0;
    const struct passwd *pw = getpwuid(st.st_uid);
    char name[64];
    if (pw != NULL && pw->pw_name != NULL)
        snprintf(name, sizeof(name), "%s", pw->pw_name);
    else
        snprintf(name, sizeof(name), "%lu", (unsigned long)st.st_uid);
    ctl_err("the data directory %s belongs to %s, not root: files root made there would be "
            "unreadable to the service. Run as that user: runuser -u %s -- aegisctl ...",
            c->cfg.data_dir, name, name);
    return -1;
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
    if (ctl_local_mode(c) && check_owner(c) != 0)
        return -1;
    c->cfg_ready = 1;
    return 0;
fail:
    ctl_err("%s", err);
    return -1;
}
