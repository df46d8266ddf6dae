#include "config_check.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum kind { DIR_KIND, FILE_KIND };

static int
problem(FILE *out, const char *key, const char *path, const char *what)
{
    fprintf(out, "aegisd: %s %s: %s\n", key, path, what);
    return 1;
}

/* Whether path, which exists, allows mode (R_OK, W_OK, X_OK) to this process's effective ids. */
static int
usable(const char *path, int mode)
{
    return faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0;
}

/* path must exist as a kind, with mode. Returns the number of problems (0 or 1). */
static int
need(FILE *out, const char *key, const char *path, enum kind kind, int mode)
{
    struct stat st;
    char why[160];
    if (stat(path, &st) != 0) {
        snprintf(why, sizeof(why), "%s", errno == ENOENT ? "does not exist" : strerror(errno));
        return problem(out, key, path, why);
    }
    if (kind == DIR_KIND && !S_ISDIR(st.st_mode))
        return problem(out, key, path, "is not a directory");
    if (kind == FILE_KIND && !S_ISREG(st.st_mode))
        return problem(out, key, path, "is not a regular file");
    if (!usable(path, mode)) {
        snprintf(why, sizeof(why), "not %s%s%sby this user", mode & R_OK ? "readable " : "",
                 mode & W_OK ? "writable " : "", mode & X_OK ? "searchable " : "");
        return problem(out, key, path, why);
    }
    return 0;
}

/* A file aegisd writes (creating it when missing): its directory writable, the file writable. */
static int
need_writable_file(FILE *out, const char *key, const char *path, int also_read)
{
    char copy[CONFIG_PATH_MAX];
    if (access(path, F_OK) == 0)
        return need(out, key, path, FILE_KIND, W_OK | (also_read ? R_OK : 0));
    snprintf(copy, sizeof(copy), "%s", path);
    return need(out, key, dirname(copy), DIR_KIND, W_OK | X_OK);
}

static int
check_key_mode(FILE *out, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || (st.st_mode & 077) == 0)
        return 0;
    return problem(out, "tls_key", path, "group or others may access it (chmod 600)");
}

int
config_check_paths(const struct config *c, FILE *out)
{
    char images[CONFIG_PATH_MAX + 16];
    int n = need(out, "data_dir", c->data_dir, DIR_KIND, R_OK | W_OK | X_OK);
    n += need_writable_file(out, "database", c->database, 1);
    n += need(out, "pki_dir", c->pki_dir, DIR_KIND, R_OK | X_OK);
    n += need(out, "tls_cert", c->tls_cert, FILE_KIND, R_OK);
    int key_bad = need(out, "tls_key", c->tls_key, FILE_KIND, R_OK);
    n += key_bad ? key_bad : check_key_mode(out, c->tls_key);
    n += need_writable_file(out, "issuance_log", c->issuance_log, 0);
    if (c->log_file[0] != '\0')
        n += need_writable_file(out, "log_file", c->log_file, 0);
    snprintf(images, sizeof(images), "%s/images", c->data_dir);
    if (access(images, F_OK) == 0)
        n += need(out, "images", images, DIR_KIND, R_OK | W_OK | X_OK);
    return n;
}
