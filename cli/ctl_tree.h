/* ctl_tree: the files of a backup (cmd_backup.c): copies that are private (files 0600, directories
 * 0700, whatever the umask), durable (fsync) and hashed (SHA-256) on the way, and directory trees
 * of such files listed in a manifest. */
#ifndef AEGIS_CTL_TREE_H
#define AEGIS_CTL_TREE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_SHA256_HEX 65 /* 64 hex characters and a NUL */

/* Copies the regular file src to the new file dst (mode 0600, never over an existing file or
 * through a symlink), fsynced; sha_hex (may be NULL) gets its SHA-256, *size (may be NULL) its
 * length. Returns 0, or -1 with the reason in err (dst removed). */
int ctl_copy_file(const char *src, const char *dst, char sha_hex[CTL_SHA256_HEX], int64_t *size,
                  char *err, size_t errlen);

/* The SHA-256 and length of the file at path. Returns 0 / -1 (err). */
int ctl_file_sha256(const char *path, char sha_hex[CTL_SHA256_HEX], int64_t *size, char *err,
                    size_t errlen);

/* Copies the tree under src_dir into dst_dir (made 0700; it may exist): its directories (0700) and
 * regular files (0600), skipping the top-level entry named skip (NULL: none). Anything else (a
 * symlink, a socket) is refused. Appends {"path": "<rel>/<path under src_dir>", "size", "sha256"}
 * to files for every file copied. Returns 0 / -1 (err). */
int ctl_tree_copy(const char *src_dir, const char *dst_dir, const char *rel, const char *skip,
                  json_t *files, char *err, size_t errlen);

/* 1 when path is a directory with at least one entry, 0 when it is missing or empty, -1 when it
 * cannot be read or is not a directory (err). */
int ctl_dir_has_entries(const char *path, char *err, size_t errlen);

#endif
