/* Unit tests of firmware-ref/boot.c: measured boot over device storage. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "boot.h"
#include "evidence.h"
#include "hal_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
    char dir[64];
    adev_storage *st;
    uint8_t bl[1000], os[3000], os_old[3000], app1[500], app2[700];
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_fw_boot.XXXXXX");
    if (mkdtemp(f->dir) == NULL || (f->st = adev_host_storage_open(f->dir)) == NULL)
        return -1;
    memset(f->bl, 1, sizeof(f->bl));
    memset(f->os, 2, sizeof(f->os));
    memset(f->os_old, 3, sizeof(f->os_old));
    memset(f->app1, 4, sizeof(f->app1));
    memset(f->app2, 5, sizeof(f->app2));
    const struct adev_image boot[4] = {
        {PROTO_STAGE_BOOTLOADER, "aegis-bl", "1.0.0", 1, f->bl, sizeof(f->bl)},
        {PROTO_STAGE_OS, "aegis-os", "2.1.0", 3, f->os, sizeof(f->os)},
        {PROTO_STAGE_APP, "thermo", "1.0.0", 1, f->app1, sizeof(f->app1)},
        {PROTO_STAGE_APP, "agent", "0.1.0-rc1", 9, f->app2, sizeof(f->app2)},
    };
    const struct adev_image prev = {PROTO_STAGE_OS, "aegis-os",       "2.0.0", 2,
                                    f->os_old,      sizeof(f->os_old)};
    if (adev_boot_install(f->st, boot, 4, &prev, 1) != 0)
        return -1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    adev_storage_free(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void
assert_digest(const uint8_t d[32], const uint8_t *img, size_t len)
{
    uint8_t want[32];
    assert_int_equal(proto_sha256(img, len, want), 0);
    assert_memory_equal(d, want, 32);
}

static void
test_boot_measures_each_stage(void **state)
{
    struct fixture *f = *state;
    struct adev_boot_log log, again;
    uint8_t c[32];

    assert_int_equal(adev_boot_run(f->st, NULL, &log), 0);
    assert_int_equal(log.n, 4);
    assert_int_equal(log.events[0].stage, PROTO_STAGE_BOOTLOADER);
    assert_string_equal(log.events[0].component, "aegis-bl");
    assert_digest(log.events[0].digest, f->bl, sizeof(f->bl));
    assert_int_equal(log.events[1].stage, PROTO_STAGE_OS);
    assert_string_equal(log.events[1].version, "2.1.0");
    assert_int_equal(log.events[1].svn, 3);
    assert_digest(log.events[1].digest, f->os, sizeof(f->os));
    assert_string_equal(log.events[3].component, "agent");
    assert_int_equal(log.events[3].svn, 9);
    assert_digest(log.events[3].digest, f->app2, sizeof(f->app2));
    /* the composite is the protocol's fold of the log, and a boot is deterministic */
    assert_int_equal(proto_composite(log.events, log.n, c), 0);
    assert_memory_equal(c, log.composite, 32);
    assert_int_equal(adev_boot_run(f->st, NULL, &again), 0);
    assert_memory_equal(again.composite, log.composite, 32);
}

static void
test_boot_tamper_and_previous(void **state)
{
    struct fixture *f = *state;
    struct adev_boot_log good, bad, old;
    struct adev_boot_opts tamper = {0, 1}, previous = {1, 0};

    assert_int_equal(adev_boot_run(f->st, NULL, &good), 0);
    assert_int_equal(adev_boot_run(f->st, &tamper, &bad), 0);
    /* same claims, only the OS measurement differs */
    assert_string_equal(bad.events[1].version, good.events[1].version);
    assert_memory_not_equal(bad.events[1].digest, good.events[1].digest, 32);
    assert_memory_equal(bad.events[0].digest, good.events[0].digest, 32);
    assert_memory_equal(bad.events[2].digest, good.events[2].digest, 32);
    assert_memory_not_equal(bad.composite, good.composite, 32);
    /* the images in storage are untouched */
    struct adev_boot_log after;
    assert_int_equal(adev_boot_run(f->st, NULL, &after), 0);
    assert_memory_equal(after.composite, good.composite, 32);

    assert_int_equal(adev_boot_run(f->st, &previous, &old), 0);
    assert_string_equal(old.events[1].version, "2.0.0");
    assert_int_equal(old.events[1].svn, 2);
    assert_digest(old.events[1].digest, f->os_old, sizeof(f->os_old));
    assert_memory_not_equal(old.composite, good.composite, 32);
}

static void
test_boot_failures(void **state)
{
    struct fixture *f = *state;
    struct adev_boot_log log;
    uint8_t *m = NULL;
    size_t len = 0;

    /* a missing image stops the boot */
    assert_int_equal(adev_storage_read(f->st, ADEV_MANIFEST, 65536, &m, &len), 0);
    assert_int_equal(adev_storage_remove(f->st, "app2.img"), 0);
    assert_int_equal(adev_boot_run(f->st, NULL, &log), -1);
    /* unknown manifest keys are refused */
    const char *extra = "{\"version\": 1, \"stages\": [], \"extra\": 1}";
    assert_int_equal(adev_storage_write(f->st, ADEV_MANIFEST, extra, strlen(extra), 0), 0);
    assert_int_equal(adev_boot_run(f->st, NULL, &log), -1);
    /* a manifest whose chain breaks the log rules (no OS) */
    const char *no_os = "{\"version\": 1, \"stages\": ["
                        "{\"stage\": \"bootloader\", \"component\": \"aegis-bl\", \"version\": "
                        "\"1\", \"svn\": 1, \"image\": \"bootloader.img\"},"
                        "{\"stage\": \"app\", \"component\": \"thermo\", \"version\": \"1\", "
                        "\"svn\": 1, \"image\": \"app1.img\"}]}";
    assert_int_equal(adev_storage_write(f->st, ADEV_MANIFEST, no_os, strlen(no_os), 0), 0);
    assert_int_equal(adev_boot_run(f->st, NULL, &log), -1);
    /* no previous OS to roll back to */
    struct adev_boot_opts previous = {1, 0};
    assert_int_equal(adev_storage_write(f->st, ADEV_MANIFEST, m, len, 0), 0);
    assert_int_equal(adev_storage_remove(f->st, ADEV_MANIFEST), 0);
    assert_int_equal(adev_boot_run(f->st, &previous, &log), -1);
    free(m);
    /* install refuses a chain out of order */
    uint8_t img[4] = {1, 2, 3, 4};
    const struct adev_image wrong[3] = {
        {PROTO_STAGE_OS, "aegis-os", "1", 1, img, 4},
        {PROTO_STAGE_BOOTLOADER, "aegis-bl", "1", 1, img, 4},
        {PROTO_STAGE_APP, "app", "1", 1, img, 4},
    };
    assert_int_equal(adev_boot_install(f->st, wrong, 3, NULL, 0), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_boot_measures_each_stage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boot_tamper_and_previous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boot_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
