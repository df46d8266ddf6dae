/* Unit tests of signer/sg_ilog.c, the signer's append-only issuance log: the line format and its
 * hash chain, a reopened log continuing the chain, verify catching a changed or removed line, a
 * torn last line refused, permissions, and the sticky failure after a write error. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "sg_ilog.h"
#include "util.h"

#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

static char dir[64];

static int
setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/aegis-test-ilog-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static const struct sg_ilog_rec rec = {
    .time = 1800000000,
    .kind = "device_cert",
    .tenant_id = 7,
    .subject = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    .serial_hex = "5d1f3a",
    .issuer = "tenants/7/ca-1",
    .not_after = 1807776000};

/* A log at path with n records. */
static void
write_log(const char *path, int n)
{
    char err[256];
    sg_ilog *l = sg_ilog_open(path, err, sizeof(err));
    assert_non_null(l);
    for (int i = 0; i < n; i++)
        assert_int_equal(sg_ilog_append(l, &rec, err, sizeof(err)), 0);
    assert_int_equal(sg_ilog_sync(l, err, sizeof(err)), 0);
    sg_ilog_close(l);
}

static char *
slurp(const char *path)
{
    char *s = util_read_file(path, 1 << 20, NULL);
    assert_non_null(s);
    return s;
}

static void
put(const char *path, const char *text)
{
    assert_int_equal(util_write_file(path, text, strlen(text), 0600), 0);
}

static int
verify(const char *path, size_t *lines, char *err, size_t errlen)
{
    return sg_ilog_verify(path, lines, err, errlen);
}

static void
test_format_and_chain(void **state)
{
    (void)state;
    char path[128], err[256], hex[65];
    size_t lines = 0;
    struct stat st;
    unsigned char h[32];
    path_of(path, sizeof(path), "fmt.log");
    write_log(path, 2);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *s = slurp(path);
    char *nl = strchr(s, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_string_equal(s, "{\"seq\":1,\"time\":1800000000,\"kind\":\"device_cert\",\"tenant\":7,"
                           "\"subject\":\"0123456789abcdef0123456789abcdef0123456789abcdef"
                           "0123456789abcdef\",\"serial\":\"5d1f3a\",\"issuer\":\"tenants/7/ca-1\","
                           "\"not_after\":1807776000,\"prev\":\"" ZEROS "\"}");
    crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    json_t *second = json_loads(nl + 1, 0, NULL);
    assert_non_null(second);
    assert_int_equal(json_integer_value(json_object_get(second, "seq")), 2);
    assert_string_equal(json_string_value(json_object_get(second, "prev")), hex);
    json_decref(second);
    free(s);
    assert_int_equal(verify(path, &lines, err, sizeof(err)), 0);
    assert_int_equal(lines, 2);
}

static void
test_reopen_continues(void **state)
{
    (void)state;
    char path[128], err[256];
    size_t lines = 0;
    path_of(path, sizeof(path), "reopen.log");
    write_log(path, 3);
    write_log(path, 2);
    write_log(path, 0);
    assert_int_equal(verify(path, &lines, err, sizeof(err)), 0);
    assert_int_equal(lines, 5);
    char *s = slurp(path);
    assert_non_null(strstr(s, "{\"seq\":5,"));
    free(s);
    /* an empty log verifies with no lines; a missing one does not */
    path_of(path, sizeof(path), "empty.log");
    write_log(path, 0);
    assert_int_equal(verify(path, &lines, err, sizeof(err)), 0);
    assert_int_equal(lines, 0);
    path_of(path, sizeof(path), "missing.log");
    assert_int_equal(verify(path, &lines, err, sizeof(err)), -1);
}

/* The log with line k (1-based) replaced by repl (NULL: removed). */
static void
edit_line(const char *path, int k, const char *repl)
{
    char *s = slurp(path), *out = calloc(1, strlen(s) + 1024);
    assert_non_null(out);
    int i = 1;
    for (char *line = s, *nl; *line != '\0'; line = nl + 1, i++) {
        nl = strchr(line, '\n');
        assert_non_null(nl);
        if (i != k)
            strncat(out, line, (size_t)(nl - line + 1));
        else if (repl != NULL)
            strcat(strcat(out, repl), "\n");
    }
    put(path, out);
    free(out);
    free(s);
}

static char *
line_at(const char *path, int k)
{
    char *s = slurp(path), *line = s;
    for (int i = 1; i < k; i++)
        line = strchr(line, '\n') + 1;
    char *copy = strndup(line, (size_t)(strchr(line, '\n') - line));
    free(s);
    return copy;
}

static void
test_verify_catches_edits(void **state)
{
    (void)state;
    char path[128], err[256];
    size_t lines = 0;
    path_of(path, sizeof(path), "edit.log");

    /* a changed serial in line 2 breaks line 3's prev */
    write_log(path, 4);
    char *l2 = line_at(path, 2);
    char *at = strstr(l2, "5d1f3a");
    at[0] = '6';
    edit_line(path, 2, l2);
    assert_int_equal(verify(path, &lines, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 3"));
    free(l2);

    /* a removed line: the seq gap shows at once */
    unlink(path);
    write_log(path, 4);
    edit_line(path, 2, NULL);
    assert_int_equal(verify(path, &lines, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 2"));

    /* a removed line with the seqs after it renumbered: the chain still breaks */
    unlink(path);
    write_log(path, 3);
    char *l3 = line_at(path, 3);
    memcpy(strstr(l3, "\"seq\":3"), "\"seq\":2", 7);
    edit_line(path, 3, l3);
    edit_line(path, 2, NULL);
    assert_int_equal(verify(path, &lines, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 2: prev"));
    free(l3);

    /* the first line's prev must be the zeros; junk is not a record */
    unlink(path);
    write_log(path, 2);
    edit_line(path, 1, NULL);
    assert_int_equal(verify(path, &lines, err, sizeof(err)), -1);
    put(path, "junk\n");
    assert_int_equal(verify(path, &lines, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 1: not JSON"));
}

static void
test_torn_last_line(void **state)
{
    (void)state;
    char path[128], err[256];
    size_t lines = 0;
    path_of(path, sizeof(path), "torn.log");
    write_log(path, 2);
    char *s = slurp(path);
    s[strlen(s) - 10] = '\0'; /* a power cut in the middle of the second write */
    put(path, s);
    free(s);
    assert_null(sg_ilog_open(path, err, sizeof(err)));
    assert_non_null(strstr(err, "torn"));
    assert_int_equal(verify(path, &lines, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 2"));
    /* a last line that is complete but no record */
    put(path, "{\"seq\":1}\n");
    assert_null(sg_ilog_open(path, err, sizeof(err)));
    assert_non_null(strstr(err, "prev"));
    /* a last line longer than any record */
    char big[3000];
    memset(big, 'x', sizeof(big));
    big[sizeof(big) - 2] = '\n';
    big[sizeof(big) - 1] = '\0';
    put(path, big);
    assert_null(sg_ilog_open(path, err, sizeof(err)));
    assert_non_null(strstr(err, "too long"));
}

static void
test_permissions(void **state)
{
    (void)state;
    char path[128], err[256];
    path_of(path, sizeof(path), "perm.log");
    write_log(path, 1);
    assert_int_equal(chmod(path, 0640), 0);
    assert_null(sg_ilog_open(path, err, sizeof(err)));
    assert_non_null(strstr(err, "0600"));
    assert_int_equal(chmod(path, 0602), 0);
    assert_null(sg_ilog_open(path, err, sizeof(err)));
    assert_int_equal(chmod(path, 0600), 0);
    sg_ilog *l = sg_ilog_open(path, err, sizeof(err));
    assert_non_null(l);
    sg_ilog_close(l);
    /* not a regular file; a symlink is not followed; a missing directory */
    assert_null(sg_ilog_open(dir, err, sizeof(err)));
    char link_path[128];
    path_of(link_path, sizeof(link_path), "link.log");
    assert_int_equal(symlink(path, link_path), 0);
    assert_null(sg_ilog_open(link_path, err, sizeof(err)));
    path_of(path, sizeof(path), "nodir/x.log");
    assert_null(sg_ilog_open(path, err, sizeof(err)));
    assert_null(sg_ilog_open(NULL, err, sizeof(err)));
}

static void
test_bad_records(void **state)
{
    (void)state;
    char path[128], err[256], longs[200];
    path_of(path, sizeof(path), "bad.log");
    sg_ilog *l = sg_ilog_open(path, err, sizeof(err));
    assert_non_null(l);
    struct sg_ilog_rec r = rec;
    r.kind = "root";
    assert_int_equal(sg_ilog_append(l, &r, err, sizeof(err)), -1);
    r = rec;
    r.subject = NULL;
    assert_int_equal(sg_ilog_append(l, &r, err, sizeof(err)), -1);
    memset(longs, 'a', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    r = rec;
    r.serial_hex = longs;
    assert_int_equal(sg_ilog_append(l, &r, err, sizeof(err)), -1);
    /* a CA record, with a subject that needs escaping kept intact */
    r = rec;
    r.kind = "ca";
    r.subject = "tenants/7/ca-2";
    r.issuer = "tenants/7/root \"x\"";
    assert_int_equal(sg_ilog_append(l, &r, err, sizeof(err)), 0);
    assert_int_equal(sg_ilog_sync(l, err, sizeof(err)), 0);
    assert_int_equal(sg_ilog_sync(l, err, sizeof(err)), 0); /* nothing pending */
    sg_ilog_close(l);
    size_t lines = 0;
    assert_int_equal(sg_ilog_verify(path, &lines, err, sizeof(err)), 0);
    assert_int_equal(lines, 1);
}

/* A write that fails (the disk is full: /dev/full) fails every later append and sync. */
static void
test_sticky_failure(void **state)
{
    (void)state;
    char path[128], err[256];
    path_of(path, sizeof(path), "full.log");
    sg_ilog *l = sg_ilog_open(path, err, sizeof(err));
    assert_non_null(l);
    int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
    if (full < 0) {
        sg_ilog_close(l);
        skip();
    }
    /* the log's descriptor is the lowest free one after stdio: swap /dev/full in under it */
    int fd = -1;
    for (int i = 3; i < full; i++) {
        struct stat a, b;
        if (fstat(i, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino)
            fd = i;
    }
    assert_true(fd >= 0);
    assert_int_equal(dup2(full, fd), fd);
    close(full);
    assert_int_equal(sg_ilog_append(l, &rec, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "write"));
    assert_int_equal(sg_ilog_sync(l, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "earlier"));
    assert_int_equal(sg_ilog_append(l, &rec, err, sizeof(err)), -1);
    sg_ilog_close(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_chain),     cmocka_unit_test(test_reopen_continues),
        cmocka_unit_test(test_verify_catches_edits), cmocka_unit_test(test_torn_last_line),
        cmocka_unit_test(test_permissions),          cmocka_unit_test(test_bad_records),
        cmocka_unit_test(test_sticky_failure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
