#include "ctl.h"

#include <stdarg.h>

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
