/* store_images: update images (store.h "update images"): their bytes, received into a temporary
 * file and named by their SHA-256 under <dir>/<tenant>/, and their rows. A row exists only for a
 * complete file that is durable on disk; a file without a row is left only by a crash between the
 * two, and is replaced by the next upload of the same bytes. */
#include "store.h"
#include "store_deploy_int.h"
#include "store_int.h"
#include "store_refval_int.h"

#include "log.h"
#include "proto_fields.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMAGE_COLS "sha256, size, product_id, component, kind, version, svn, hardware, created_at"

static const char SQL_IMAGE_GET[] =
    "SELECT " IMAGE_COLS " FROM images WHERE tenant_id = ?1 AND sha256 = ?2";
static const char SQL_IMAGE_LIST[] = "SELECT id, " IMAGE_COLS " FROM images "
                                     "WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
static const char SQL_IMAGE_ADD[] =
    "INSERT INTO images (tenant_id, sha256, size, product_id, component, kind, version, svn, "
    "hardware, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
static const char SQL_IMAGE_DELETE[] = "DELETE FROM images WHERE tenant_id = ?1 AND sha256 = ?2";
/* In a group's current deployment (its newest that is not aborted: running, paused, halted or
 * completed), which the director names (docs/update.md section 4). */
static const char SQL_IMAGE_DEPLOYED[] =
    "SELECT 1 FROM deployment_images d WHERE d.tenant_id = ?1 AND d.sha256 = ?2 AND "
    "d.deployment_id IN (SELECT max(id) FROM deployments WHERE tenant_id = ?1 AND "
    "state <> 'aborted' GROUP BY group_id) LIMIT 1";
static const char SQL_PRODUCT_OWNED[] = "SELECT 1 FROM products WHERE id = ?1 AND tenant_id = ?2";

struct store_image_upload {
    char dir[PATH_MAX];
    char tmp[PATH_MAX];
    int fd;
    int64_t size;
    crypto_hash_sha256_state hash;
};

/* The JSON of a row of IMAGE_COLS starting at column first. */
static json_t *
image_json_at(sqlite3_stmt *st, int first)
{
    return json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "sha256", store__col_text(st, first),
        "size", store__col_int(st, first + 1), "product_id", store__col_int(st, first + 2),
        "component", store__col_text(st, first + 3), "kind", store__col_text(st, first + 4),
        "version", store__col_text(st, first + 5), "svn", store__col_int(st, first + 6), "hardware",
        store__col_text(st, first + 7), "created_at", store__col_time(st, first + 8));
}

static json_t *
image_json(sqlite3_stmt *st)
{
    return image_json_at(st, 0);
}

static json_t *
image_list_json(sqlite3_stmt *st)
{
    return image_json_at(st, 1);
}

int
store_image_ok(const struct store_image *img)
{
    return img != NULL && (!img->register_refval || strcmp(img->kind, "app") == 0) &&
           proto_component_ok(img->component, strlen(img->component)) &&
           (strcmp(img->kind, "os") == 0 || strcmp(img->kind, "app") == 0) &&
           proto_version_ok(img->version, strlen(img->version)) && img->svn >= 0 &&
           img->svn <= PROTO_SVN_MAX && proto_component_ok(img->hardware, strlen(img->hardware)) &&
           img->product_id > 0;
}

/* path = dir/<tenant>[/<sha256>] */
static int
image_path(char *path, size_t len, const char *dir, int64_t tenant_id, const char *sha256)
{
    int n = sha256 != NULL ? snprintf(path, len, "%s/%lld/%s", dir, (long long)tenant_id, sha256)
                           : snprintf(path, len, "%s/%lld", dir, (long long)tenant_id);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static int
fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
    if (fd >= 0)
        close(fd);
    return rc;
}

store_image_upload *
store_image_upload_begin(const char *dir, char *err, size_t errlen)
{
    store_image_upload *u = calloc(1, sizeof(*u));
    char tmpdir[PATH_MAX];
    if (u == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    u->fd = -1;
    if (snprintf(u->dir, sizeof(u->dir), "%s", dir) >= (int)sizeof(u->dir) ||
        snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", dir) >= (int)sizeof(tmpdir) ||
        snprintf(u->tmp, sizeof(u->tmp), "%s/upload-XXXXXX", tmpdir) >= (int)sizeof(u->tmp)) {
        snprintf(err, errlen, "image directory path too long");
        goto fail;
    }
    /* Locked while the upload lives, so store_image_sweep never takes it for a crash's leftover. */
    if (util_mkdirs(tmpdir, 0700) != 0 || (u->fd = mkostemp(u->tmp, O_CLOEXEC)) < 0 ||
        flock(u->fd, LOCK_EX) != 0) {
        snprintf(err, errlen, "cannot create an upload file under %s: %s", tmpdir, strerror(errno));
        u->tmp[0] = '\0';
        goto fail;
    }
    crypto_hash_sha256_init(&u->hash);
    return u;
fail:
    store_image_upload_abort(u);
    return NULL;
}

/* An upload file untouched this long and not locked is a crash's leftover (store_image_sweep). */
#define SWEEP_AGE_S 60

/* A leftover: an upload file nobody holds locked that has not been written for SWEEP_AGE_S. */
static int
orphan(int dfd, const char *name, time_t now)
{
    struct stat st;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    int gone = 0;
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && now - st.st_mtime >= SWEEP_AGE_S &&
        flock(fd, LOCK_EX | LOCK_NB) == 0)
        gone = unlinkat(dfd, name, 0) == 0;
    close(fd); /* drops the lock */
    return gone;
}

int
store_image_sweep(const char *dir, int *removed)
{
    char tmpdir[PATH_MAX];
    *removed = 0;
    if (snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", dir) >= (int)sizeof(tmpdir))
        return -1;
    DIR *d = opendir(tmpdir);
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    time_t now = time(NULL);
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (strncmp(e->d_name, "upload-", 7) == 0)
            *removed += orphan(dirfd(d), e->d_name, now);
    }
    closedir(d);
    return 0;
}

int
store_image_upload_write(store_image_upload *u, const void *p, size_t n, char *err, size_t errlen)
{
    const char *b = p;
    crypto_hash_sha256_update(&u->hash, p, n);
    while (n > 0) {
        ssize_t w = write(u->fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, errlen, "cannot write the upload: %s", strerror(w < 0 ? errno : EIO));
            return -1;
        }
        b += w;
        n -= (size_t)w;
        u->size += w;
    }
    return 0;
}

void
store_image_upload_abort(store_image_upload *u)
{
    if (u == NULL)
        return;
    if (u->fd >= 0)
        close(u->fd);
    if (u->tmp[0] != '\0')
        unlink(u->tmp);
    free(u);
}

/* Steps SQL_IMAGE_GET for the tenant's image sha256: STORE_OK with *st on its row, or
 * STORE_NOTFOUND. */
static int
image_row(store *s, struct conn *c, int64_t tenant_id, const char *sha256, sqlite3_stmt **st)
{
    if ((*st = store__prep(s, c, SQL_IMAGE_GET)) == NULL)
        return STORE_ERR;
    int rc = store__bound(s, c,
                          sqlite3_bind_int64(*st, 1, tenant_id) | store__bind_text(*st, 2, sha256));
    return rc == STORE_OK ? store__step_row(s, c, *st, "image get") : rc;
}

static int
image_load(store *s, struct conn *c, int64_t tenant_id, const char *sha256, json_t **obj)
{
    sqlite3_stmt *st = NULL;
    int rc = image_row(s, c, tenant_id, sha256, &st);
    if (rc == STORE_OK && (*obj = image_json(st)) == NULL)
        rc = STORE_ERR;
    return rc;
}

/* The image's row, when the tenant has these bytes already: STORE_OK (*same 1 when its metadata is
 * img's, *obj its JSON), STORE_NOTFOUND. */
static int
existing(store *s, struct conn *c, int64_t tenant_id, const struct store_image *img, json_t **obj,
         int *same)
{
    sqlite3_stmt *st = NULL;
    int rc = image_row(s, c, tenant_id, img->sha256, &st);
    if (rc != STORE_OK)
        return rc;
    *same = sqlite3_column_int64(st, 2) == img->product_id &&
            strcmp((const char *)sqlite3_column_text(st, 3), img->component) == 0 &&
            strcmp((const char *)sqlite3_column_text(st, 4), img->kind) == 0 &&
            strcmp((const char *)sqlite3_column_text(st, 5), img->version) == 0 &&
            sqlite3_column_int64(st, 6) == img->svn &&
            strcmp((const char *)sqlite3_column_text(st, 7), img->hardware) == 0;
    *obj = image_json(st);
    return *obj != NULL ? STORE_OK : STORE_ERR;
}

static int
insert(store *s, struct conn *c, int64_t tenant_id, const struct store_image *img,
       const struct store_actor *a)
{
    sqlite3_stmt *st = NULL;
    int rc = store__owned(s, c, SQL_PRODUCT_OWNED, img->product_id, tenant_id);
    if (rc != STORE_OK)
        return rc;
    if ((st = store__prep(s, c, SQL_IMAGE_ADD)) == NULL)
        return STORE_ERR;
    rc = store__bound(
        s, c,
        sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, img->sha256) |
            sqlite3_bind_int64(st, 3, img->size) | sqlite3_bind_int64(st, 4, img->product_id) |
            store__bind_text(st, 5, img->component) | store__bind_text(st, 6, img->kind) |
            store__bind_text(st, 7, img->version) | sqlite3_bind_int64(st, 8, img->svn) |
            store__bind_text(st, 9, img->hardware) | sqlite3_bind_int64(st, 10, util_now()));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "image insert");
    if (rc == STORE_OK)
        rc = store__audit(s, c, tenant_id, a, "image.create", "image", 0, img->sha256,
                          json_pack("{s:I, s:s, s:s, s:s, s:I}", "size", (json_int_t)img->size,
                                    "component", img->component, "kind", img->kind, "version",
                                    img->version, "svn", (json_int_t)img->svn));
    return rc;
}

/* The app image's reference value, when the upload asks for it (an upload that registers a value
 * conflicting with the tenant's stores nothing). */
static int
register_refval(store *s, struct conn *c, int64_t tenant_id, const struct store_image *img,
                const struct store_actor *a)
{
    if (!img->register_refval)
        return STORE_OK;
    struct store_measurement m = {"app", img->component, img->version, img->svn, img->sha256};
    return store__refval_ensure(s, c, tenant_id, &m, a);
}

/* Finishes the bytes of u: the digest into img, the file flushed. */
static int
seal(store_image_upload *u, struct store_image *img)
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&u->hash, d);
    sodium_bin2hex(img->sha256, sizeof(img->sha256), d, sizeof(d));
    img->size = u->size;
    return fsync(u->fd) == 0 ? 0 : -1;
}

int
store_image_upload_commit(store *s, store_image_upload *u, int64_t tenant_id,
                          struct store_image *img, const struct store_actor *a, json_t **out,
                          int *created)
{
    char tdir[PATH_MAX], final[PATH_MAX];
    struct conn *c = NULL;
    json_t *obj = NULL;
    int rc = STORE_INVALID, same = 0, placed = 0;

    *out = NULL;
    *created = 0;
    if (!store_image_ok(img) || !store__actor_ok(a) || tenant_id <= 0)
        goto out;
    rc = STORE_ERR;
    if (seal(u, img) != 0 || image_path(tdir, sizeof(tdir), u->dir, tenant_id, NULL) != 0 ||
        image_path(final, sizeof(final), u->dir, tenant_id, img->sha256) != 0 ||
        util_mkdirs(tdir, 0700) != 0)
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK)
        goto out;
    rc = existing(s, c, tenant_id, img, &obj, &same);
    if (rc == STORE_OK) {
        rc = same ? register_refval(s, c, tenant_id, img, a)
                  : STORE_CONFLICT; /* the same bytes are not two images */
        goto out;
    }
    if (rc != STORE_NOTFOUND || (rc = insert(s, c, tenant_id, img, a)) != STORE_OK ||
        (rc = register_refval(s, c, tenant_id, img, a)) != STORE_OK)
        goto out;
    /* The file is in place and durable before the row commits; a rename over a file a crash left
     * behind replaces it with the same bytes. */
    if (rename(u->tmp, final) != 0 || fsync_dir(tdir) != 0) {
        rc = STORE_ERR;
        goto out;
    }
    placed = 1;
    u->tmp[0] = '\0';
    rc = image_load(s, c, tenant_id, img->sha256, &obj);
    if (rc == STORE_OK)
        *created = 1;
out:
    rc = c != NULL ? store__end_tx(s, c, rc) : rc;
    if (rc != STORE_OK && placed)
        unlink(final);
    if (c != NULL)
        store__give(s, c);
    store_image_upload_abort(u);
    if (rc == STORE_OK)
        *out = obj;
    else
        json_decref(obj);
    return rc;
}

int
store_image_get(store *s, int64_t tenant_id, const char *sha256, json_t **out)
{
    *out = NULL;
    if (sha256 == NULL || !proto_digest_hex_ok(sha256, strlen(sha256)))
        return STORE_NOTFOUND;
    struct conn *c = store__take(s);
    int rc = image_load(s, c, tenant_id, sha256, out);
    store__give(s, c);
    return rc;
}

int
store_image_open(store *s, const char *dir, int64_t tenant_id, const char *sha256, int *fd,
                 int64_t *size)
{
    char path[PATH_MAX];
    sqlite3_stmt *st = NULL;
    struct stat sb;
    int rc = STORE_NOTFOUND;

    *fd = -1;
    *size = 0;
    if (sha256 == NULL || !proto_digest_hex_ok(sha256, strlen(sha256)) ||
        image_path(path, sizeof(path), dir, tenant_id, sha256) != 0)
        return STORE_NOTFOUND;
    struct conn *c = store__take(s);
    if ((rc = image_row(s, c, tenant_id, sha256, &st)) == STORE_OK)
        *size = sqlite3_column_int64(st, 1);
    store__give(s, c);
    if (rc != STORE_OK)
        return rc;
    /* The name comes from the validated digest only; O_NOFOLLOW refuses a symlink put there. */
    int f = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (f < 0 || fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode) || (int64_t)sb.st_size != *size) {
        log_warn("msg=\"an image's file is missing or not its row's\" path=%s error=\"%s\"", path,
                 f < 0 ? strerror(errno) : "wrong type or size");
        if (f >= 0)
            close(f);
        *size = 0;
        return STORE_NOTFOUND;
    }
    *fd = f;
    return STORE_OK;
}

int
store_image_list(store *s, int64_t tenant_id, const struct store_page *pg, json_t **items,
                 char *next_cursor)
{
    int64_t after = 0;
    int rc = STORE_INVALID;

    *items = NULL;
    if (!store__page_ok(pg) || (rc = store__int_cursor(pg, 0, &after)) != STORE_OK)
        return rc;
    return store__list_by_id(s, tenant_id, SQL_IMAGE_LIST, pg, after, 0, image_list_json, items,
                             next_cursor);
}

int
store_image_delete(store *s, const char *dir, int64_t tenant_id, const char *sha256,
                   const struct store_actor *a)
{
    char path[PATH_MAX], gone[PATH_MAX + 32];
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = STORE_NOTFOUND, moved = 0;

    if (sha256 == NULL || !proto_digest_hex_ok(sha256, strlen(sha256)))
        goto out;
    rc = STORE_INVALID;
    if (!store__actor_ok(a) || image_path(path, sizeof(path), dir, tenant_id, sha256) != 0)
        goto out;
    snprintf(gone, sizeof(gone), "%s.deleted.%ld", path, (long)getpid());
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = image_row(s, c, tenant_id, sha256, &st)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_IMAGE_DEPLOYED)) == NULL)
        goto out;
    rc = store__bound(s, c, sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, sha256));
    if (rc == STORE_OK && (rc = store__step_row(s, c, st, "image deployed")) != STORE_NOTFOUND) {
        rc = rc == STORE_OK ? STORE_CONFLICT : rc; /* a deployment that is not over uses it */
        goto out;
    }
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_IMAGE_DELETE)) == NULL)
        goto out;
    rc = store__bound(s, c, sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, sha256));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "image delete");
    if (rc == STORE_OK)
        rc = store__audit(s, c, tenant_id, a, "image.delete", "image", 0, sha256, json_object());
    /* An older completed deployment may become current again after an abort: its answers then
     * leave the image out, which is a change of what devices should install. */
    if (rc == STORE_OK)
        rc = store__director_bump(s, c, tenant_id, util_now(), NULL);
    /* The file leaves its name while the write lock is held, as an upload of the same bytes places
     * its file under that lock: a re-upload that commits after this one finds the name free, and
     * the unlink below can never take its file. */
    if (rc == STORE_OK && rename(path, gone) != 0 && errno != ENOENT)
        rc = STORE_ERR;
    moved = rc == STORE_OK;
out:
    if (c != NULL) {
        rc = store__end_tx(s, c, rc);
        store__give(s, c);
    }
    if (moved && rc != STORE_OK)
        (void)rename(gone, path); /* the delete rolled back: the image keeps its file */
    /* After the commit: a crash in between leaves a file without a row, never the reverse. */
    if (moved && rc == STORE_OK && unlink(gone) != 0 && errno != ENOENT)
        log_warn("msg=\"cannot remove a deleted image's file\" path=%s error=\"%s\"", gone,
                 strerror(errno));
    return rc;
}
