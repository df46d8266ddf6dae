#include "ctl_tree.h"

#include "errbuf.h"
#include "proto_fields.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_BUF 65536

/* Reads all of fd, hashing it, and writes it to out unless out is -1. 0 / -1 (errno). */
static int
pump(int fd, int out, char sha_hex[CTL_SHA256_HEX], int64_t *size)
{
    unsigned char buf[COPY_BUF], digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state h;
    int64_t total = 0;
    crypto_hash_sha256_init(&h);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        crypto_hash_sha256_update(&h, buf, (size_t)n);
        total += n;
        for (ssize_t off = 0; out >= 0 && off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return -1;
            off += w;
        }
    }
    crypto_hash_sha256_final(&h, digest);
    if (sha_hex != NULL)
        proto_hex(digest, sizeof(digest), sha_hex);
    if (size != NULL)
        *size = total;
    return 0;
}

int
ctl_file_sha256(const char *path, char sha_hex[CTL_SHA256_HEX], int64_t *size, char *err,
                size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int rc = -1;
    if (fd < 0 || pump(fd, -1, sha_hex, size) != 0)
        errbuf_set(err, errlen, "cannot read %s: %s", path, strerror(errno));
    else
        rc = 0;
    if (fd >= 0)
        close(fd);
    return rc;
}

int
ctl_copy_file(const char *src, const char *dst, char sha_hex[CTL_SHA256_HEX], int64_t *size,
              char *err, size_t errlen)
{
    int in = -1, out = -1, rc = -1;
    const char *failed = src;

    if ((in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        goto out;
    failed = dst;
    if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
        goto out;
    if (fchmod(out, 0600) != 0 || pump(in, out, sha_hex, size) != 0 || fsync(out) != 0)
        goto out;
    rc = close(out);
    out = -1;
out:
    if (rc != 0) {
        errbuf_set(err, errlen, "cannot copy %s to %s: %s: %s", src, dst, failed, strerror(errno));
        if (failed == dst)
            unlink(dst);
    }
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* Makes dir with exactly mode 0700 unless it is a directory already. 0 / -1 (err). */
static int
private_dir(const char *dir, char *err, size_t errlen)
{
    if (util_mkdirs(dir, 0700) != 0 || chmod(dir, 0700) != 0) {
        errbuf_set(err, errlen, "cannot create directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int
add_file(json_t *files, const char *rel, const char *sha, int64_t size)
{
    json_t *o = json_pack("{s:s, s:I, s:s}", "path", rel, "size", (json_int_t)size, "sha256", sha);
    return o != NULL && json_array_append_new(files, o) == 0 ? 0 : -1;
}

int
ctl_tree_copy(const char *src_dir, const char *dst_dir, const char *rel, const char *skip,
              json_t *files, char *err, size_t errlen)
{
    char src[PATH_MAX], dst[PATH_MAX], sub[PATH_MAX], sha[CTL_SHA256_HEX];
    DIR *d = NULL;
    struct dirent *e;
    int rc = -1;

    if (private_dir(dst_dir, err, errlen) != 0)
        goto out;
    if ((d = opendir(src_dir)) == NULL) {
        errbuf_set(err, errlen, "cannot read directory %s: %s", src_dir, strerror(errno));
        goto out;
    }
    while ((errno = 0, e = readdir(d)) != NULL) {
        struct stat sb;
        int64_t size = 0;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            (skip != NULL && strcmp(e->d_name, skip) == 0))
            continue;
        if (snprintf(src, sizeof(src), "%s/%s", src_dir, e->d_name) >= (int)sizeof(src) ||
            snprintf(dst, sizeof(dst), "%s/%s", dst_dir, e->d_name) >= (int)sizeof(dst) ||
            snprintf(sub, sizeof(sub), "%s/%s", rel, e->d_name) >= (int)sizeof(sub)) {
            errbuf_set(err, errlen, "path too long in %s", src_dir);
            goto out;
        }
        if (lstat(src, &sb) != 0) {
            errbuf_set(err, errlen, "cannot read %s: %s", src, strerror(errno));
            goto out;
        }
        if (S_ISDIR(sb.st_mode)) {
            if (ctl_tree_copy(src, dst, sub, NULL, files, err, errlen) != 0)
                goto out;
        } else if (S_ISREG(sb.st_mode)) {
            if (ctl_copy_file(src, dst, sha, &size, err, errlen) != 0)
                goto out;
            if (add_file(files, sub, sha, size) != 0) {
                errbuf_set(err, errlen, "out of memory");
                goto out;
            }
        } else {
            errbuf_set(err, errlen, "%s is not a regular file or a directory", src);
            goto out;
        }
    }
    if (errno != 0) {
        errbuf_set(err, errlen, "cannot read directory %s: %s", src_dir, strerror(errno));
        goto out;
    }
    if (util_fsync_dir(dst_dir) != 0) {
        errbuf_set(err, errlen, "cannot sync directory %s: %s", dst_dir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (d != NULL)
        closedir(d);
    return rc;
}

int
ctl_dir_has_entries(const char *path, char *err, size_t errlen)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (d == NULL) {
        if (errno == ENOENT)
            return 0;
        errbuf_set(err, errlen, "cannot read directory %s: %s", path, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            n = 1;
            break;
        }
    closedir(d);
    return n;
}
