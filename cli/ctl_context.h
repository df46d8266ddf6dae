/* ctl_context: the stored context (aegisctl login) and where each API setting comes from.
 *
 * The context file is $XDG_CONFIG_HOME/aegis/config (default ~/.config/aegis/config; directory
 * 0700, file 0600) of "key = value" lines (# comments): server, cacert, token_file. The token
 * itself is never in it: token_file names the file that holds it (login copies a token read from
 * stdin into <dir>/token, 0600).
 *
 * Precedence, per setting: the global option (--server, --cacert, --token / --token-file), then the
 * environment (AEGIS_SERVER, AEGIS_CACERT, AEGIS_TOKEN), then the context, then the default. The
 * context's cacert and token_file are used only with the context's own server: a token is never
 * sent to a server it was not stored for. */
#ifndef AEGIS_CTL_CONTEXT_H
#define AEGIS_CTL_CONTEXT_H

#include "ctl.h"

#include <limits.h>

#define CTL_DEFAULT_SERVER "https://127.0.0.1:8443"
#define CTL_CONTEXT_VALUE_MAX 1024

struct ctl_context {
    int present; /* the file exists (and was read) */
    char path[PATH_MAX];
    char server[CTL_CONTEXT_VALUE_MAX];
    char cacert[CTL_CONTEXT_VALUE_MAX];
    char token_file[CTL_CONTEXT_VALUE_MAX];
};

/* dir/<name> of the context directory into buf ("" name: the directory). Returns 0, or -1 with the
 * error printed (no $HOME, too long). */
int ctl_context_path(const char *name, char *buf, size_t len);

/* Reads the context file into ctx (present 0 when there is none). Returns 0, or -1 with the error
 * printed (unreadable, malformed: an unknown or repeated key). */
int ctl_context_load(struct ctl_context *ctx);

/* Makes the context directory (and its parent) as needed, mode 0700. Returns 0, or -1 (printed). */
int ctl_context_mkdir(void);

/* Writes ctx (path and server set) to its path, making the directory as needed; the file 0600.
 * Returns 0, or -1 with the error printed. */
int ctl_context_save(const struct ctl_context *ctx);

/* The API settings in effect, each with where it came from ("--server", "AEGIS_SERVER", "context",
 * "default"...). Strings borrow from c, the environment and ctx. token_arg and token_file are NULL
 * when not set; at most one of them is set. */
struct ctl_settings {
    const char *server, *server_from;
    const char *cacert, *cacert_from;                /* NULL: <pki_dir>/root.crt or the system's */
    const char *token_arg, *token_file, *token_from; /* token_from NULL: no token */
};
/* Fills s from c, the environment and ctx (ctx may be NULL or not present). Returns 0, or a usage
 * error's exit code (--token with --token-file). */
int ctl_context_settings(struct ctl *c, const struct ctl_context *ctx, struct ctl_settings *s);

#endif
