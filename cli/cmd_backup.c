/* aegisctl backup and restore: everything a service needs to come back, taken while it serves.
 *
 * A backup is a directory (mode 0700, files 0600):
 *   aegis.db        the database, copied with SQLite's online backup API (store_backup): one
 *                   consistent snapshot, taken first;
 *   pki/            the PKI directory as it is after the snapshot: the service root, the TLS
 *                   certificate and key, each tenant's device root, issuing CAs and online TUF
 *                   keys, the issuance log. Copied after the database, so every key the snapshot
 *                   names exists already (keys are only ever added while the service runs);
 *   images/         the update images' bytes (data_dir/images/<tenant>/<sha256>), without uploads
 *                   in progress (tmp/);
 *   MANIFEST.json   written last: what the backup is and every file's size and SHA-256. A
 *                   directory without it is an incomplete backup, which restore refuses.
 * Restore checks every file against the manifest and the database (store_check_file) before it
 * changes anything in the target. */
#include "cmd_backup.h"

#include "ctl_args.h"
#include "ctl_print.h"
#include "ctl_store.h"
#include "ctl_tree.h"

#include "errbuf.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANIFEST "MANIFEST.json"
#define FORMAT "aegis-backup"
#define FORMAT_VERSION 1
#define DB_NAME "aegis.db"
#define MANIFEST_MAX (64 * 1024 * 1024)

/* "<a>/<b>" into out. 0 / -1 (too long, error printed). */
static int
join(char *out, size_t len, const char *a, const char *b)
{
    if (snprintf(out, len, "%s/%s", a, b) >= (int)len) {
        ctl_err("path too long: %.64s/%.64s", a, b);
        return -1;
    }
    return 0;
}

/* The backup directory: made (0700) unless it is an empty directory already. 0 / -1 (printed). */
static int
backup_dir(const char *dest)
{
    char err[512];
    int has = ctl_dir_has_entries(dest, err, sizeof(err));
    if (has < 0) {
        ctl_err("%s", err);
        return -1;
    }
    if (has > 0) {
        ctl_err("%s exists and is not empty: a backup goes to a new directory", dest);
        return -1;
    }
    if ((mkdir(dest, 0700) != 0 && errno != EEXIST) || chmod(dest, 0700) != 0) {
        ctl_err("cannot create directory %s: %s", dest, strerror(errno));
        return -1;
    }
    return 0;
}

/* Copies the database, the PKI directory and the images into dest, listing them in files. Returns
 * 0 / -1 (printed); *version gets the database's schema version. */
static int
backup_files(struct ctl *c, const char *dest, json_t *files, int *version)
{
    char err[1024], path[PATH_MAX], sha[CTL_SHA256_HEX];
    int64_t size = 0;
    struct stat sb;

    if (join(path, sizeof(path), dest, DB_NAME) != 0)
        return -1;
    int rc = store_backup(c->cfg.database, path, version, err, sizeof(err));
    if (rc != STORE_OK) {
        ctl_err("%s%s", rc == STORE_INVALID ? "the database failed its checks: " : "", err);
        return -1;
    }
    if (ctl_file_sha256(path, sha, &size, err, sizeof(err)) != 0 ||
        json_array_append_new(files, json_pack("{s:s, s:I, s:s}", "path", DB_NAME, "size",
                                               (json_int_t)size, "sha256", sha)) != 0) {
        ctl_err("%s", err[0] ? err : "out of memory");
        return -1;
    }
    if (stat(c->cfg.pki_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        ctl_err("no PKI directory at %s (the service cannot come back without it)", c->cfg.pki_dir);
        return -1;
    }
    if (join(path, sizeof(path), dest, "pki") != 0 ||
        ctl_tree_copy(c->cfg.pki_dir, path, "pki", NULL, files, err, sizeof(err)) != 0)
        goto fail;
    char images[PATH_MAX];
    if (join(images, sizeof(images), c->cfg.data_dir, "images") != 0)
        return -1;
    if (stat(images, &sb) == 0 &&
        (join(path, sizeof(path), dest, "images") != 0 ||
         ctl_tree_copy(images, path, "images", "tmp", files, err, sizeof(err)) != 0))
        goto fail;
    return 0;
fail:
    ctl_err("%s", err);
    return -1;
}

/* Sums the files' sizes, the number of PKI files and of images. */
static void
count_files(const json_t *files, int64_t *bytes, size_t *pki, size_t *images)
{
    size_t i;
    json_t *f;
    *bytes = 0;
    *pki = *images = 0;
    json_array_foreach(files, i, f)
    {
        const char *p = json_string_value(json_object_get(f, "path"));
        *bytes += json_integer_value(json_object_get(f, "size"));
        *pki += strncmp(p, "pki/", 4) == 0;
        *images += strncmp(p, "images/", 7) == 0;
    }
}

static int
ctl_backup(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    char path[PATH_MAX], when[32];
    json_t *files = NULL, *m = NULL;
    char *text = NULL;
    int version = 0, rc = CTL_EXIT_LOCAL;
    int pr = ctl_parse(c, argc, argv, NULL, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (ctl_config(c) != 0 || backup_dir(pos[0]) != 0)
        return CTL_EXIT_LOCAL;
    int64_t now = util_now();
    if ((files = json_array()) == NULL || backup_files(c, pos[0], files, &version) != 0)
        goto out;
    m = json_pack("{s:s, s:i, s:s, s:s, s:i, s:s, s:O}", "format", FORMAT, "format_version",
                  FORMAT_VERSION, "created_at", util_rfc3339(now, when, sizeof(when)),
                  "aegis_version", AEGIS_VERSION, "schema_version", version, "source",
                  c->cfg.data_dir, "files", files);
    if (m == NULL || (text = json_dumps(m, JSON_INDENT(2))) == NULL) {
        ctl_err("out of memory");
        goto out;
    }
    if (join(path, sizeof(path), pos[0], MANIFEST) != 0)
        goto out;
    if (util_write_file(path, text, strlen(text), 0600) != 0) {
        ctl_err("cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    int64_t bytes;
    size_t npki, nimages;
    count_files(files, &bytes, &npki, &nimages);
    if (c->json) {
        json_t *o = json_pack("{s:s, s:s, s:i, s:I, s:I, s:I, s:I}", "backup", pos[0], "created_at",
                              when, "schema_version", version, "files",
                              (json_int_t)json_array_size(files), "bytes", (json_int_t)bytes,
                              "pki_files", (json_int_t)npki, "images", (json_int_t)nimages);
        if (o != NULL)
            ctl_print_json(o);
        json_decref(o);
    } else {
        printf("backup of %s (schema version %d) written to %s: %zu files, %lld bytes "
               "(the database, %zu PKI files, %zu images)\n",
               c->cfg.data_dir, version, pos[0], json_array_size(files), (long long)bytes, npki,
               nimages);
    }
    rc = CTL_EXIT_OK;
out:
    if (rc != CTL_EXIT_OK)
        fprintf(stderr, "the backup in %s is incomplete (no %s): restore refuses it\n", pos[0],
                MANIFEST);
    free(text);
    json_decref(m);
    json_decref(files);
    return rc;
}

/* --- restore --- */

/* A manifest path restore may write: aegis.db, or below pki/ or images/, without "." or ".."
 * components, empty components or a leading slash. */
static int
path_ok(const char *p)
{
    if (strcmp(p, DB_NAME) == 0)
        return 1;
    if (strncmp(p, "pki/", 4) != 0 && strncmp(p, "images/", 7) != 0)
        return 0;
    for (const char *s = p; *s;) {
        size_t n = strcspn(s, "/");
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return 0;
        s += n;
        if (*s == '/')
            s++;
        if (*s == '\0' && s[-1] == '/')
            return 0;
    }
    return 1;
}

/* Reads the backup's manifest and checks every file it lists against its size and SHA-256.
 * Returns the manifest (the caller's), or NULL (printed). */
static json_t *
load_manifest(const char *dir)
{
    char path[PATH_MAX], err[1024], sha[CTL_SHA256_HEX];
    json_error_t je;
    json_t *m = NULL, *f;
    size_t i;
    int has_db = 0;

    if (join(path, sizeof(path), dir, MANIFEST) != 0)
        return NULL;
    if (access(path, F_OK) != 0) {
        ctl_err("%s is not a complete backup (no %s)", dir, MANIFEST);
        return NULL;
    }
    if ((m = json_load_file(path, 0, &je)) == NULL) {
        ctl_err("%s: %s", path, je.text);
        return NULL;
    }
    json_t *files = json_object_get(m, "files");
    if (json_integer_value(json_object_get(m, "format_version")) != FORMAT_VERSION ||
        !json_is_string(json_object_get(m, "format")) ||
        strcmp(json_string_value(json_object_get(m, "format")), FORMAT) != 0 ||
        !json_is_array(files)) {
        ctl_err("%s: not an Aegis backup manifest of format %d", path, FORMAT_VERSION);
        goto fail;
    }
    json_array_foreach(files, i, f)
    {
        const char *p = json_string_value(json_object_get(f, "path"));
        const char *want = json_string_value(json_object_get(f, "sha256"));
        int64_t size = 0;
        if (p == NULL || want == NULL || !path_ok(p)) {
            ctl_err("%s: bad entry %zu", path, i);
            goto fail;
        }
        has_db |= strcmp(p, DB_NAME) == 0;
        char fp[PATH_MAX];
        if (join(fp, sizeof(fp), dir, p) != 0)
            goto fail;
        if (ctl_file_sha256(fp, sha, &size, err, sizeof(err)) != 0) {
            ctl_err("the backup is damaged: %s", err);
            goto fail;
        }
        if (strcmp(sha, want) != 0 || size != json_integer_value(json_object_get(f, "size"))) {
            ctl_err("the backup is damaged: %s is not what %s says (size or SHA-256)", fp,
                    MANIFEST);
            goto fail;
        }
    }
    if (!has_db) {
        ctl_err("%s lists no %s", path, DB_NAME);
        goto fail;
    }
    return m;
fail:
    json_decref(m);
    return NULL;
}

/* What restore would replace. */
struct target {
    char images[PATH_MAX];
    char wal[PATH_MAX];
};

/* 1 when the target holds a service's data (a database or its log, PKI files, images), 0 when not,
 * -1 on an error (printed). */
static int
target_has_data(struct ctl *c, const struct target *t)
{
    char err[512];
    if (access(c->cfg.database, F_OK) == 0 || access(t->wal, F_OK) == 0)
        return 1;
    int a = ctl_dir_has_entries(c->cfg.pki_dir, err, sizeof(err));
    int b = a < 0 ? 0 : ctl_dir_has_entries(t->images, err, sizeof(err));
    if (a < 0 || b < 0) {
        ctl_err("%s", err);
        return -1;
    }
    return a || b;
}

/* Moves the target's data into <data_dir>/pre-restore-<time>/ (printed). 0 / -1 (printed). */
static int
move_aside(struct ctl *c, const struct target *t)
{
    static const char *const db_suffix[] = {"", "-wal", "-shm", "-devgen"};
    char aside[PATH_MAX], from[PATH_MAX], to[PATH_MAX], when[32];
    util_rfc3339(util_now(), when, sizeof(when));
    /* a second restore within the same second gets "-2" */
    for (int n = 1;; n++) {
        if (snprintf(aside, sizeof(aside), n == 1 ? "%s/pre-restore-%s" : "%s/pre-restore-%s-%d",
                     c->cfg.data_dir, when, n) >= (int)sizeof(aside)) {
            ctl_err("path too long: %.64s", c->cfg.data_dir);
            return -1;
        }
        if (mkdir(aside, 0700) == 0)
            break;
        if (errno != EEXIST || n == 100) {
            ctl_err("cannot create %s: %s", aside, strerror(errno));
            return -1;
        }
    }
    for (size_t i = 0; i < 6; i++) {
        if (i < 4)
            snprintf(from, sizeof(from), "%s%s", c->cfg.database, db_suffix[i]);
        else
            snprintf(from, sizeof(from), "%s", i == 4 ? c->cfg.pki_dir : t->images);
        const char *base = strrchr(from, '/');
        if (access(from, F_OK) != 0)
            continue;
        if (join(to, sizeof(to), aside, base != NULL ? base + 1 : from) != 0)
            return -1;
        if (rename(from, to) != 0) {
            ctl_err("cannot move %s to %s: %s", from, to, strerror(errno));
            return -1;
        }
    }
    fprintf(stderr, "the data that was there is in %s\n", aside);
    return 0;
}

/* Copies the backup's PKI files and images (checked again on the way) into place. */
static int
restore_files(struct ctl *c, const char *dir, const json_t *files, const struct target *t)
{
    char src[PATH_MAX], dst[PATH_MAX], parent[PATH_MAX], err[1024], sha[CTL_SHA256_HEX];
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *p = json_string_value(json_object_get(f, "path"));
        int pki = strncmp(p, "pki/", 4) == 0;
        if (!pki && strncmp(p, "images/", 7) != 0)
            continue;
        if (join(src, sizeof(src), dir, p) != 0 ||
            join(dst, sizeof(dst), pki ? c->cfg.pki_dir : t->images, p + (pki ? 4 : 7)) != 0)
            return -1;
        snprintf(parent, sizeof(parent), "%s", dst);
        *strrchr(parent, '/') = '\0';
        if (util_mkdirs(parent, 0700) != 0) {
            ctl_err("cannot create directory %s: %s", parent, strerror(errno));
            return -1;
        }
        if (ctl_copy_file(src, dst, sha, NULL, err, sizeof(err)) != 0) {
            ctl_err("%s", err);
            return -1;
        }
        if (strcmp(sha, json_string_value(json_object_get(f, "sha256"))) != 0) {
            ctl_err("%s changed while it was restored", src);
            return -1;
        }
    }
    return 0;
}

/* Copies the backup's database next to the target's as tmp and checks it. 0 / -1 (printed). */
static int
stage_database(struct ctl *c, const char *dir, const char *tmp, int *version)
{
    char src[PATH_MAX], err[1024];
    if (join(src, sizeof(src), dir, DB_NAME) != 0 || ctl_make_parent_dir(c->cfg.database) != 0)
        return -1;
    unlink(tmp); /* a previous restore's, interrupted */
    if (ctl_copy_file(src, tmp, NULL, NULL, err, sizeof(err)) != 0) {
        ctl_err("%s", err);
        return -1;
    }
    int rc = store_check_file(tmp, version, err, sizeof(err));
    if (rc != STORE_OK) {
        ctl_err("the backup's database %s: %s",
                rc == STORE_INVALID ? "failed its checks" : "cannot be read", err);
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int
restore_report(struct ctl *c, const char *dir, const json_t *m, int version)
{
    const char *created = json_string_value(json_object_get(m, "created_at"));
    size_t n = json_array_size(json_object_get(m, "files"));
    if (c->json) {
        json_t *o =
            json_pack("{s:s, s:s, s:s?, s:i, s:I}", "restored", dir, "data_dir", c->cfg.data_dir,
                      "created_at", created, "schema_version", version, "files", (json_int_t)n);
        if (o == NULL)
            return CTL_EXIT_LOCAL;
        ctl_print_json(o);
        json_decref(o);
    } else {
        printf("restored the backup %s of %s (schema version %d, %zu files) into %s; aegisd "
               "applies newer migrations when it starts\n",
               dir, created != NULL ? created : "?", version, n, c->cfg.data_dir);
    }
    return CTL_EXIT_OK;
}

static int
ctl_restore(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    int force = 0, version = 0, rc = CTL_EXIT_LOCAL;
    char err[512], tmp[PATH_MAX];
    struct target t;
    json_t *m = NULL;
    const struct ctl_opt opts[] = {{"--force", CTL_OPT_FLAG, NULL, &force}, {NULL, 0, NULL, NULL}};
    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (ctl_config(c) != 0 || join(t.images, sizeof(t.images), c->cfg.data_dir, "images") != 0 ||
        snprintf(t.wal, sizeof(t.wal), "%s-wal", c->cfg.database) >= (int)sizeof(t.wal) ||
        snprintf(tmp, sizeof(tmp), "%s.restore", c->cfg.database) >= (int)sizeof(tmp))
        return CTL_EXIT_LOCAL;
    int busy = store_in_use(c->cfg.database, err, sizeof(err));
    if (busy != 0) {
        if (busy > 0)
            ctl_err("the database %s is open in another process (a running aegisd?): stop the "
                    "service first; --force does not override this",
                    c->cfg.database);
        else
            ctl_err("%s", err);
        return CTL_EXIT_LOCAL;
    }
    if ((m = load_manifest(pos[0])) == NULL)
        return CTL_EXIT_LOCAL;
    int has = target_has_data(c, &t);
    if (has < 0)
        goto out;
    if (has && !force) {
        ctl_err("%s holds a service's data (database, PKI or images); --force moves it to "
                "%s/pre-restore-<time>/ and restores",
                c->cfg.data_dir, c->cfg.data_dir);
        goto out;
    }
    if (util_mkdirs(c->cfg.data_dir, 0700) != 0) {
        ctl_err("cannot create %s: %s", c->cfg.data_dir, strerror(errno));
        goto out;
    }
    if (stage_database(c, pos[0], tmp, &version) != 0)
        goto out;
    if ((has && move_aside(c, &t) != 0) ||
        restore_files(c, pos[0], json_object_get(m, "files"), &t) != 0) {
        unlink(tmp);
        goto out;
    }
    /* directories that were there empty keep their mode otherwise */
    if ((access(c->cfg.pki_dir, F_OK) == 0 && chmod(c->cfg.pki_dir, 0700) != 0) ||
        (access(t.images, F_OK) == 0 && chmod(t.images, 0700) != 0)) {
        ctl_err("cannot make the PKI and images directories private: %s", strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, c->cfg.database) != 0) {
        ctl_err("cannot move %s to %s: %s", tmp, c->cfg.database, strerror(errno));
        goto out;
    }
    char dbdir[PATH_MAX];
    snprintf(dbdir, sizeof(dbdir), "%s", c->cfg.database);
    char *slash = strrchr(dbdir, '/');
    if (util_fsync_dir(slash != NULL ? (*slash = '\0', dbdir) : ".") != 0) {
        ctl_err("cannot sync the database's directory: %s", strerror(errno));
        goto out;
    }
    rc = restore_report(c, pos[0], m, version);
out:
    json_decref(m);
    return rc;
}

const struct ctl_cmd cmd_backup_cmds[] = {
    {"backup", NULL, ctl_backup, 0, "DIR",
     "back up the database, the PKI directory and the images while the service runs",
     "Writes a backup of the data directory to DIR (a new or empty directory; made mode 0700,\n"
     "files 0600): the database as one consistent snapshot taken with SQLite's online backup\n"
     "API while aegisd serves (nothing committed after the snapshot's start is in it, nothing\n"
     "committed before is missing), then the PKI directory (service root, TLS key, tenants'\n"
     "device roots, issuing CAs and online TUF keys, the issuance log) and the update images.\n"
     "MANIFEST.json, written last, lists every file with its size and SHA-256. The copy is\n"
     "checked (integrity, schema) before the command succeeds. Run it as the user that owns\n"
     "the data directory. The backup holds private keys: keep it as safe as the data directory.\n"
     "With --json prints {\"backup\", \"created_at\", \"schema_version\", \"files\", \"bytes\",\n"
     "\"pki_files\", \"images\"}.\n",
     NULL},
    {"restore", NULL, ctl_restore, 0, "DIR [--force]",
     "restore a backup into the data directory (the service stopped)",
     "Checks the backup in DIR (every file against MANIFEST.json; the database's integrity and\n"
     "schema: an Aegis database no newer than this binary), then puts the database, the PKI\n"
     "directory and the images in place for --data-dir or --config. Refused while a process has\n"
     "the target's database open (a running aegisd), whatever the options; refused when the\n"
     "target holds data (a database, PKI files or images) unless --force, which first moves that\n"
     "data into <data_dir>/pre-restore-<time>/. aegisd applies newer migrations when it starts.\n"
     "\n"
     "Options:\n"
     "  --force   replace the data in the target (moved aside, not deleted)\n",
     NULL},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
