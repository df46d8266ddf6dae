#include "isolate.h"

#include "errbuf.h"
#include "util.h"

#include <linux/landlock.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Rights of later ABIs, for headers older than the kernel. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

#define FS_ABI1 ((LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1) /* bits 0..12 */
/* What may be granted on a file (the rest only on directories). */
#define FS_FILE_RIGHTS                                                                             \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |   \
     LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define FS_READ                                                                                    \
    (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_EXECUTE)
#define FS_RW_FILE                                                                                 \
    (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE)
/* A directory aegisd owns: make, rename into, remove and use files and directories in it. */
#define FS_OWNED                                                                                   \
    (FS_RW_FILE | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |                      \
     LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |                                \
     LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REFER)
/* A directory aegisd writes one file into (log, ready file), renamed into place. */
#define FS_WRITE_DIR                                                                               \
    (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_MAKE_REG |   \
     LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_REFER)

#define MAX_KEYS 8

struct ctx {
    int fd;           /* the ruleset */
    uint64_t handled; /* every right this ABI knows: what is not granted is denied */
    char keys[MAX_KEYS][PATH_MAX];
    size_t nkeys;
    char *err;
    size_t errlen;
};

int
isolate_parse_mode(const char *s, enum isolate_mode *out)
{
    static const char *const names[] = {"off", "auto", "required"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum isolate_mode)i;
            return 0;
        }
    }
    return -1;
}

static int
landlock_abi(void)
{
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return v > 0 ? (int)v : 0;
}

static uint64_t
handled_for(int abi)
{
    uint64_t h = FS_ABI1;
    if (abi >= 2)
        h |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        h |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        h |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return h;
}

/* The canonical form of a path that may not exist yet (its directory must). */
static int
canonical(const char *path, char out[PATH_MAX])
{
    if (realpath(path, out) != NULL)
        return 0;
    char copy[PATH_MAX], dir[PATH_MAX];
    if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy) ||
        realpath(dirname(copy), dir) == NULL)
        return -1;
    snprintf(copy, sizeof(copy), "%s", path);
    return snprintf(out, PATH_MAX, "%s/%s", dir, basename(copy)) < PATH_MAX ? 0 : -1;
}

/* The key path that lies at or beneath path, or NULL. */
static const char *
holds_key(const struct ctx *c, const char *path)
{
    char real[PATH_MAX];
    if (canonical(path, real) != 0)
        return NULL;
    size_t n = strlen(real);
    for (size_t i = 0; i < c->nkeys; i++) {
        const char *k = c->keys[i];
        if (strcmp(real, "/") == 0 || (strncmp(k, real, n) == 0 && (k[n] == '\0' || k[n] == '/')))
            return k;
    }
    return NULL;
}

/* Grants access on path (a file gets only file rights). A missing optional path is skipped. */
static int
allow(struct ctx *c, const char *path, uint64_t access, int optional)
{
    struct stat st;
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        if (optional && errno == ENOENT)
            return 0;
        errbuf_set(c->err, c->errlen, "key isolation: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
        access &= FS_FILE_RIGHTS;
    struct landlock_path_beneath_attr pb = {.allowed_access = access & c->handled, .parent_fd = fd};
    int rc = (int)syscall(SYS_landlock_add_rule, c->fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
    if (rc != 0)
        errbuf_set(c->err, c->errlen, "key isolation: rule for %s: %s", path, strerror(errno));
    close(fd);
    return rc == 0 ? 0 : -1;
}

/* Read-only system directories (libraries, configuration, /proc), except one that holds a key. */
static int
allow_system(struct ctx *c)
{
    static const char *const roots[] = {"/usr", "/lib", "/lib64", "/bin", "/etc", "/proc", "/sys"};
    static const char *const etc[] = {"/etc/localtime",       "/etc/ssl",   "/etc/gnutls",
                                      "/etc/crypto-policies", "/etc/hosts", "/etc/nsswitch.conf"};
    for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
        if (holds_key(c, roots[i]) == NULL) {
            if (allow(c, roots[i], FS_READ, 1) != 0)
                return -1;
        } else if (strcmp(roots[i], "/etc") == 0) {
            for (size_t j = 0; j < sizeof(etc) / sizeof(etc[0]); j++) {
                if (holds_key(c, etc[j]) == NULL && allow(c, etc[j], FS_READ, 1) != 0)
                    return -1;
            }
        }
    }
    return allow(c, "/dev/null", FS_RW_FILE, 1) != 0 ||
                   allow(c, "/dev/urandom", LANDLOCK_ACCESS_FS_READ_FILE, 1) != 0
               ? -1
               : 0;
}

/* The database (its files exist once it is open), its directory for listing (SQLite opens it to
 * sync), and the directories of images and SQLite's temporary files. */
static int
allow_data(struct ctx *c, const struct isolate_paths *p)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-devgen"};
    char path[PATH_MAX], copy[PATH_MAX];
    if (holds_key(c, p->database) != NULL) {
        errbuf_set(c->err, c->errlen, "key isolation: the database %s is a key path", p->database);
        return -1;
    }
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        if (snprintf(path, sizeof(path), "%s%s", p->database, suffix[i]) >= (int)sizeof(path) ||
            allow(c, path, FS_RW_FILE, i > 0) != 0)
            return -1;
    }
    snprintf(copy, sizeof(copy), "%s", p->database);
    if (allow(c, dirname(copy), LANDLOCK_ACCESS_FS_READ_DIR, 0) != 0)
        return -1;
    static const char *const owned[] = {"images", "sqlite-tmp"};
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
        if (snprintf(path, sizeof(path), "%s/%s", p->data_dir, owned[i]) >= (int)sizeof(path) ||
            util_mkdirs(path, 0700) != 0 || holds_key(c, path) != NULL ||
            allow(c, path, FS_OWNED, 0) != 0) {
            errbuf_set(c->err, c->errlen, "key isolation: cannot prepare %s", path);
            return -1;
        }
        if (i == 1 && setenv("SQLITE_TMPDIR", path, 1) != 0)
            return -1;
    }
    return 0;
}

/* A file aegisd writes by name later (the log, reopened on SIGHUP; the ready file, renamed into
 * place): its directory, unless that directory holds a key; then the log keeps its open file only,
 * and a ready file cannot be written. */
static int
allow_written(struct ctx *c, const char *path, int must_rename)
{
    char copy[PATH_MAX];
    if (path == NULL || path[0] == '\0')
        return 0;
    snprintf(copy, sizeof(copy), "%s", path);
    const char *dir = dirname(copy);
    const char *key = holds_key(c, dir);
    if (key == NULL)
        return allow(c, dir, FS_WRITE_DIR, 0);
    if (must_rename) {
        errbuf_set(c->err, c->errlen,
                   "key isolation: %s is in a directory that holds %s; write it elsewhere", path,
                   key);
        return -1;
    }
    return allow(c, path, LANDLOCK_ACCESS_FS_WRITE_FILE, 1);
}

/* A file aegisd reads again later by name (the configuration, on SIGHUP). */
static int
allow_reread(struct ctx *c, const char *path)
{
    char copy[PATH_MAX];
    if (path == NULL || path[0] == '\0')
        return 0;
    snprintf(copy, sizeof(copy), "%s", path);
    const char *dir = dirname(copy);
    if (holds_key(c, dir) == NULL)
        return allow(c, dir, LANDLOCK_ACCESS_FS_READ_FILE, 0);
    return allow(c, path, LANDLOCK_ACCESS_FS_READ_FILE, 1);
}

/* Each probe must now fail to open. */
static int
prove(const struct isolate_paths *p, char *err, size_t errlen)
{
    for (size_t i = 0; i < p->nprobes; i++) {
        int fd = open(p->probes[i], O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            close(fd);
            errbuf_set(err, errlen, "key isolation failed: %s can still be opened", p->probes[i]);
            return -1;
        }
        if (errno != EACCES && errno != ENOENT) {
            errbuf_set(err, errlen, "key isolation: probe %s: %s", p->probes[i], strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int
build_rules(struct ctx *c, const struct isolate_paths *p)
{
    if (p->nkeys > MAX_KEYS) {
        errbuf_set(c->err, c->errlen, "key isolation: too many key paths");
        return -1;
    }
    for (size_t i = 0; i < p->nkeys; i++) {
        if (canonical(p->keys[i], c->keys[c->nkeys]) != 0) {
            errbuf_set(c->err, c->errlen, "key isolation: cannot resolve %s", p->keys[i]);
            return -1;
        }
        c->nkeys++;
    }
    if (allow_system(c) != 0 || allow_data(c, p) != 0 || allow_written(c, p->log_file, 0) != 0 ||
        allow_written(c, p->ready_file, 1) != 0 || allow_reread(c, p->config_file) != 0)
        return -1;
    return 0;
}

int
isolate_apply(const struct isolate_paths *p, enum isolate_mode mode, int *abi, char *err,
              size_t errlen)
{
    struct ctx c = {.fd = -1, .err = err, .errlen = errlen};
    int rc = -1;
    *abi = 0;
    if (mode == ISOLATE_OFF)
        return 0;
    int v = landlock_abi();
    if (v == 0) {
        if (mode == ISOLATE_AUTO)
            return 0;
        errbuf_set(err, errlen, "key isolation required, but this kernel has no Landlock");
        return -1;
    }
    c.handled = handled_for(v);
    struct landlock_ruleset_attr attr = {.handled_access_fs = c.handled};
    c.fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (c.fd < 0) {
        errbuf_set(err, errlen, "key isolation: cannot create a Landlock ruleset: %s",
                   strerror(errno));
        goto out;
    }
    if (build_rules(&c, p) != 0)
        goto out;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_landlock_restrict_self, c.fd, 0) != 0) {
        errbuf_set(err, errlen, "key isolation: cannot restrict: %s", strerror(errno));
        goto out;
    }
    if (prove(p, err, errlen) != 0)
        goto out;
    *abi = v;
    rc = 0;
out:
    if (c.fd >= 0)
        close(c.fd);
    return rc;
}
