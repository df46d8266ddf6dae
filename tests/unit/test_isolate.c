/* Unit tests of server/isolate.c (Landlock): in a forked child, a process isolated as aegisd is
 * cannot open the key files whatever their modes, still uses its database, images and ready file,
 * and a layout that would need a grant over the keys is refused before anything is restricted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "isolate.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct layout {
    char root[PATH_MAX];
    char data[PATH_MAX + 16], pki[PATH_MAX + 32], key[PATH_MAX + 48], ca_key[PATH_MAX + 64];
    char db[PATH_MAX + 32], run[PATH_MAX + 16], ready[PATH_MAX + 32], ilog[PATH_MAX + 48];
};

static void
touch(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "secret\n", 7), 7);
    close(fd);
}

static void
layout_make(struct layout *l)
{
    snprintf(l->root, sizeof(l->root), "/tmp/aegis-isolate-XXXXXX");
    assert_non_null(mkdtemp(l->root));
    snprintf(l->data, sizeof(l->data), "%s/data", l->root);
    snprintf(l->pki, sizeof(l->pki), "%s/pki", l->data);
    snprintf(l->key, sizeof(l->key), "%s/server.key", l->pki);
    snprintf(l->ca_key, sizeof(l->ca_key), "%s/tenants/1/ca-1.key", l->pki);
    snprintf(l->db, sizeof(l->db), "%s/aegis.db", l->data);
    snprintf(l->run, sizeof(l->run), "%s/run", l->root);
    snprintf(l->ready, sizeof(l->ready), "%s/ready", l->run);
    snprintf(l->ilog, sizeof(l->ilog), "%s/issuance.log", l->pki);
    char tdir[PATH_MAX + 48];
    snprintf(tdir, sizeof(tdir), "%s/tenants/1", l->pki);
    assert_int_equal(util_mkdirs(tdir, 0700), 0);
    assert_int_equal(util_mkdirs(l->run, 0700), 0);
    touch(l->key, 0644); /* readable by mode: only Landlock keeps it closed */
    touch(l->ca_key, 0600);
    touch(l->db, 0600);
}

static void
layout_free(struct layout *l)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", l->root);
    assert_int_equal(system(cmd), 0);
}

static int
landlock_present(void)
{
    return syscall(SYS_landlock_create_ruleset, NULL, 0, 1U) > 0;
}

/* What the child checks after isolate_apply; its exit code is the number of the failed check. */
static int
child_checks(const struct layout *l)
{
    const char *keys[] = {l->pki, l->key, l->ilog};
    const char *probes[] = {l->key, l->ca_key};
    struct isolate_paths p = {keys, 3, probes, 2, l->db, l->data, NULL, l->ready, NULL};
    char err[512], path[PATH_MAX + 64];
    int abi = 0;
    if (isolate_apply(&p, ISOLATE_REQUIRED, &abi, err, sizeof(err)) != 0 || abi < 1)
        return 1;
    if (open(l->key, O_RDONLY) >= 0 || errno != EACCES)
        return 2;
    if (open(l->ca_key, O_RDONLY) >= 0 || errno != EACCES)
        return 3;
    if (open(l->ca_key, O_WRONLY | O_TRUNC) >= 0) /* no writes over the keys either */
        return 4;
    int fd = open(l->db, O_RDWR);
    if (fd < 0)
        return 5;
    close(fd);
    snprintf(path, sizeof(path), "%s/images/1", l->data);
    if (util_mkdirs(path, 0700) != 0)
        return 6;
    if (util_write_file_flags(l->ready, "1234\n", 5, 0644, UTIL_WRITE_NOSYNC) != 0)
        return 7;
    snprintf(path, sizeof(path), "%s/stray", l->data); /* nothing new beside the database */
    if (open(path, O_WRONLY | O_CREAT, 0600) >= 0)
        return 8;
    if (open("/etc/hosts", O_RDONLY) < 0 && errno == EACCES)
        return 9;
    return 0;
}

static void
test_isolate_keys_closed(void **state)
{
    (void)state;
    if (!landlock_present()) {
        /* the behaviour without Landlock: auto isolates nothing, required refuses */
        struct layout l;
        layout_make(&l);
        struct isolate_paths p = {NULL, 0, NULL, 0, l.db, l.data, NULL, NULL, NULL};
        char err[256];
        int abi = 1;
        assert_int_equal(isolate_apply(&p, ISOLATE_AUTO, &abi, err, sizeof(err)), 0);
        assert_int_equal(abi, 0);
        assert_int_equal(isolate_apply(&p, ISOLATE_REQUIRED, &abi, err, sizeof(err)), -1);
        layout_free(&l);
        return;
    }
    struct layout l;
    layout_make(&l);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_checks(&l));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* the parent is not restricted */
    int fd = open(l.key, O_RDONLY);
    assert_true(fd >= 0);
    close(fd);
    layout_free(&l);
}

/* A ready file beside the PKI directory would need write access over it: refused, nothing
 * restricted. */
static void
test_isolate_refuses_ready_beside_keys(void **state)
{
    (void)state;
    if (!landlock_present())
        return; /* covered by the test above */
    struct layout l;
    layout_make(&l);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *keys[] = {l.pki};
        char ready[sizeof(l.data) + 8], err[512];
        snprintf(ready, sizeof(ready), "%s/ready", l.data);
        struct isolate_paths p = {keys, 1, NULL, 0, l.db, l.data, NULL, ready, NULL};
        int abi = 0;
        int rc = isolate_apply(&p, ISOLATE_REQUIRED, &abi, err, sizeof(err));
        int still_open = open(l.key, O_RDONLY) >= 0;
        _exit(rc == -1 && strstr(err, "write it elsewhere") != NULL && still_open ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    layout_free(&l);
}

static void
test_isolate_modes(void **state)
{
    (void)state;
    enum isolate_mode m;
    assert_int_equal(isolate_parse_mode("auto", &m), 0);
    assert_int_equal(m, ISOLATE_AUTO);
    assert_int_equal(isolate_parse_mode("required", &m), 0);
    assert_int_equal(m, ISOLATE_REQUIRED);
    assert_int_equal(isolate_parse_mode("off", &m), 0);
    assert_int_equal(m, ISOLATE_OFF);
    assert_int_equal(isolate_parse_mode("on", &m), -1);
    struct isolate_paths p = {0};
    char err[64];
    int abi = 5;
    assert_int_equal(isolate_apply(&p, ISOLATE_OFF, &abi, err, sizeof(err)), 0);
    assert_int_equal(abi, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isolate_keys_closed),
        cmocka_unit_test(test_isolate_refuses_ready_beside_keys),
        cmocka_unit_test(test_isolate_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
