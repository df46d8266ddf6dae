/* Unit tests of firmware-ref/abboot.c over the host slots (hal_host_slots.c): the A/B state
 * machine (factory, stage + arm -> trial boot -> commit, reject, boot limit, refusals, counters
 * that never go down, measured boot of the running slot) and the power-loss matrix: the update
 * runs in a child killed before each of its writes in turn (also mid-write, leaving a truncated
 * temporary file), then the device powers on and must boot a complete slot, old or new, never a
 * mix, and finish the update when it is repeated. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "abboot.h"
#include "hal_host.h"
#include "proto_fields.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KILLED 77 /* exit status of a child that "lost power" */

/* The images of the old system (factory) and of the update. */
static uint8_t bl[1000], os1[3000], os0[2000], app1[700], os2[3100], app2[800];
static const struct adev_image factory_boot[3] = {
    {PROTO_STAGE_BOOTLOADER, "aegis-bl", "1.0.0", 1, bl, sizeof(bl)},
    {PROTO_STAGE_OS, "aegis-os", "1.0.0", 3, os1, sizeof(os1)},
    {PROTO_STAGE_APP, "thermo", "1.0.0", 1, app1, sizeof(app1)},
};
static const struct adev_image factory_prev[1] = {
    {PROTO_STAGE_OS, "aegis-os", "0.9.0", 2, os0, sizeof(os0)},
};
static const struct adev_image update[2] = {
    {PROTO_STAGE_OS, "aegis-os", "2.0.0", 4, os2, sizeof(os2)},
    {PROTO_STAGE_APP, "thermo", "1.1.0", 2, app2, sizeof(app2)},
};
static uint8_t old_composite[32], new_composite[32];

struct fixture {
    char dir[64];
    adev_slots *s;
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_fw_ab.XXXXXX");
    if (mkdtemp(f->dir) == NULL ||
        (f->s = adev_host_slots_open(f->dir, ADEV_HOST_STORAGE_NOSYNC)) == NULL)
        return -1;
    char err[128];
    if (adev_ab_factory(f->s, factory_boot, 3, factory_prev, 1, err, sizeof(err)) != 0)
        return -1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    adev_slots_free(f->s);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* Measured boot of the running slot: 0 and its composite, or -1. */
static int
measure(adev_slots *s, uint8_t composite[32])
{
    struct adev_boot_log log;
    if (adev_boot_run(adev_ab_running(s), NULL, &log) != 0)
        return -1;
    memcpy(composite, log.composite, 32);
    return 0;
}

static uint32_t
svn_of(adev_slots *s, const char *component)
{
    uint32_t v = 99;
    assert_int_equal(adev_svn_read(s, component, &v), 0);
    return v;
}

static void
boot_expect(adev_slots *s, int slot, int trial, const char *rolled_back)
{
    struct adev_ab_boot b;
    char err[128] = "";
    assert_int_equal(adev_ab_boot(s, &b, err, sizeof(err)), 0);
    assert_int_equal(b.slot, slot);
    assert_int_equal(b.trial, trial);
    assert_string_equal(b.rolled_back, rolled_back);
    assert_int_equal(adev_ab_on_trial(s), trial);
}

static void
stage_and_arm(adev_slots *s, unsigned tries)
{
    char err[128] = "";
    assert_int_equal(adev_ab_stage(s, update, 2, err, sizeof(err)), 0);
    assert_int_equal(adev_ab_arm(s, tries, err, sizeof(err)), 0);
}

static int
group_setup(void **state)
{
    (void)state;
    memset(bl, 1, sizeof(bl));
    memset(os1, 2, sizeof(os1));
    memset(os0, 3, sizeof(os0));
    memset(app1, 4, sizeof(app1));
    memset(os2, 5, sizeof(os2));
    memset(app2, 6, sizeof(app2));
    /* the composites of the old and the new system, from a reference run */
    void *f = NULL;
    if (setup(&f) != 0)
        return -1;
    struct fixture *fx = f;
    struct adev_ab_boot b;
    char err[128];
    int rc = -1;
    if (adev_ab_boot(fx->s, &b, err, sizeof(err)) != 0 || measure(fx->s, old_composite) != 0 ||
        adev_ab_stage(fx->s, update, 2, err, sizeof(err)) != 0 ||
        adev_ab_arm(fx->s, 0, err, sizeof(err)) != 0 ||
        adev_ab_boot(fx->s, &b, err, sizeof(err)) != 0 || measure(fx->s, new_composite) != 0)
        goto out;
    rc = memcmp(old_composite, new_composite, 32) != 0 ? 0 : -1;
out:
    teardown(&f);
    return rc;
}

/* --- the state machine ----------------------------------------------------------------------- */

static void
test_factory(void **state)
{
    struct fixture *f = *state;
    uint8_t c[32], want[32];
    char version[33], sha[65], hex[65];
    uint32_t svn = 0;

    boot_expect(f->s, 0, 0, "");
    assert_int_equal(measure(f->s, c), 0);
    assert_memory_equal(c, old_composite, 32);
    assert_int_equal(svn_of(f->s, "aegis-bl"), 1);
    assert_int_equal(svn_of(f->s, "aegis-os"), 3);
    assert_int_equal(svn_of(f->s, "thermo"), 1);
    assert_int_equal(svn_of(f->s, "never-seen"), 0);
    assert_int_equal(adev_ab_installed(f->s, "aegis-os", version, sizeof(version), &svn, sha), 0);
    assert_string_equal(version, "1.0.0");
    assert_int_equal(svn, 3);
    assert_int_equal(proto_sha256(os1, sizeof(os1), want), 0);
    proto_hex(want, 32, hex);
    assert_string_equal(sha, hex);
    assert_int_equal(adev_ab_installed(f->s, "nope", version, sizeof(version), &svn, sha), -2);
    /* slot 1 is empty: nothing to arm */
    assert_int_equal(adev_storage_exists(adev_slots_storage(f->s, 1), ADEV_MANIFEST), 0);
    char err[128] = "";
    assert_int_equal(adev_ab_arm(f->s, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "stage it first"));
    /* a device whose control block was never written boots slot 0 */
    struct adev_bootctl ctl;
    assert_int_equal(adev_bootctl_read(f->s, &ctl), 0);
    assert_int_equal(ctl.active, 0);
    assert_int_equal(ctl.trial, -1);
}

static void
test_update_commit(void **state)
{
    struct fixture *f = *state;
    uint8_t c[32];
    char version[33], sha[65], err[128] = "";
    uint32_t svn = 0;

    boot_expect(f->s, 0, 0, "");
    stage_and_arm(f->s, 0);
    /* nothing changed for the running system until it reboots */
    assert_int_equal(adev_ab_installed(f->s, "aegis-os", version, sizeof(version), &svn, sha), 0);
    assert_string_equal(version, "1.0.0");
    assert_int_equal(adev_ab_on_trial(f->s), 0);

    boot_expect(f->s, 1, 1, "");
    assert_int_equal(measure(f->s, c), 0);
    assert_memory_equal(c, new_composite, 32);
    /* kept images are copied: the bootloader and the previous OS are in the new slot */
    struct adev_boot_log log;
    struct adev_boot_opts previous = {1, 0};
    assert_int_equal(adev_boot_run(adev_ab_running(f->s), &previous, &log), 0);
    assert_string_equal(log.events[1].version, "0.9.0");
    /* counters stay until the commit */
    assert_int_equal(svn_of(f->s, "aegis-os"), 3);
    assert_int_equal(adev_ab_commit(f->s, err, sizeof(err)), 0);
    assert_int_equal(svn_of(f->s, "aegis-os"), 4);
    assert_int_equal(svn_of(f->s, "thermo"), 2);
    assert_int_equal(svn_of(f->s, "aegis-bl"), 1);
    assert_int_equal(adev_ab_on_trial(f->s), 0);
    assert_int_equal(adev_ab_installed(f->s, "thermo", version, sizeof(version), &svn, sha), 0);
    assert_string_equal(version, "1.1.0");
    assert_int_equal(svn, 2);
    /* a second commit is refused; the committed slot boots from now on */
    assert_int_equal(adev_ab_commit(f->s, err, sizeof(err)), -1);
    boot_expect(f->s, 1, 0, "");
    boot_expect(f->s, 1, 0, "");
    assert_int_equal(measure(f->s, c), 0);
    assert_memory_equal(c, new_composite, 32);
    /* the next update goes to slot 0 */
    const struct adev_image next = {PROTO_STAGE_APP, "logger", "1.0.0", 1, app1, sizeof(app1)};
    assert_int_equal(adev_ab_stage(f->s, &next, 1, err, sizeof(err)), 0);
    assert_int_equal(adev_ab_arm(f->s, 0, err, sizeof(err)), 0);
    boot_expect(f->s, 0, 1, "");
    assert_int_equal(adev_boot_run(adev_ab_running(f->s), NULL, &log), 0);
    assert_int_equal(log.n, 4); /* an added app */
    assert_string_equal(log.events[3].component, "logger");
}

static void
test_reject(void **state)
{
    struct fixture *f = *state;
    uint8_t c[32];
    char err[128] = "";

    boot_expect(f->s, 0, 0, "");
    stage_and_arm(f->s, 0);
    boot_expect(f->s, 1, 1, "");
    assert_int_equal(adev_ab_reject(f->s, "", err, sizeof(err)), -1);
    assert_int_equal(adev_ab_reject(f->s, "bad\nreason", err, sizeof(err)), -1);
    assert_int_equal(adev_ab_reject(f->s, "health_check", err, sizeof(err)), 0);
    assert_int_equal(adev_ab_on_trial(f->s), 0);
    assert_int_equal(adev_ab_commit(f->s, err, sizeof(err)), -1);
    /* the rejected system still runs: nothing may be staged over it */
    assert_int_equal(adev_ab_stage(f->s, update, 2, err, sizeof(err)), -1);
    boot_expect(f->s, 0, 0, "health_check");
    assert_int_equal(measure(f->s, c), 0);
    assert_memory_equal(c, old_composite, 32);
    assert_int_equal(svn_of(f->s, "aegis-os"), 3);
    /* reported until cleared */
    boot_expect(f->s, 0, 0, "health_check");
    assert_int_equal(adev_ab_clear_rollback(f->s, err, sizeof(err)), 0);
    boot_expect(f->s, 0, 0, "");
}

static void
test_boot_limit(void **state)
{
    struct fixture *f = *state;
    uint8_t c[32];
    struct adev_bootctl ctl;

    boot_expect(f->s, 0, 0, "");
    stage_and_arm(f->s, 2);
    assert_int_equal(adev_bootctl_read(f->s, &ctl), 0);
    assert_int_equal(ctl.tries, 2);
    /* two trial boots that never commit (a crash loop), each counted before it runs */
    boot_expect(f->s, 1, 1, "");
    assert_int_equal(adev_bootctl_read(f->s, &ctl), 0);
    assert_int_equal(ctl.tries, 1);
    boot_expect(f->s, 1, 1, "");
    boot_expect(f->s, 0, 0, "boot_limit");
    assert_int_equal(measure(f->s, c), 0);
    assert_memory_equal(c, old_composite, 32);
    assert_int_equal(svn_of(f->s, "aegis-os"), 3);
    assert_int_equal(svn_of(f->s, "thermo"), 1);
}

static void
test_refusals(void **state)
{
    struct fixture *f = *state;
    char err[128] = "";

    boot_expect(f->s, 0, 0, "");
    /* commit and reject need a trial boot */
    assert_int_equal(adev_ab_commit(f->s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not on a trial boot"));
    assert_int_equal(adev_ab_reject(f->s, "x", err, sizeof(err)), -1);
    /* updates the chain cannot take */
    const struct adev_image twice[2] = {update[0], update[0]};
    assert_int_equal(adev_ab_stage(f->s, twice, 2, err, sizeof(err)), -1);
    const struct adev_image no_app = {PROTO_STAGE_APP, "Bad Name", "1", 1, app1, sizeof(app1)};
    assert_int_equal(adev_ab_stage(f->s, &no_app, 1, err, sizeof(err)), -1);
    assert_int_equal(adev_ab_arm(f->s, 1000, err, sizeof(err)), -1);
    /* no staging or re-arming while a trial is pending or running */
    stage_and_arm(f->s, 0);
    assert_int_equal(adev_ab_stage(f->s, update, 2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "trial"));
    assert_int_equal(adev_ab_arm(f->s, 0, err, sizeof(err)), -1);
    boot_expect(f->s, 1, 1, "");
    assert_int_equal(adev_ab_stage(f->s, update, 2, err, sizeof(err)), -1);
    assert_int_equal(adev_ab_arm(f->s, 0, err, sizeof(err)), -1);
    /* an interrupted stage (no manifest) cannot be armed */
    boot_expect(f->s, 0, 0, "boot_limit");
    assert_int_equal(adev_storage_remove(adev_slots_storage(f->s, 1), ADEV_MANIFEST), 0);
    assert_int_equal(adev_ab_arm(f->s, 0, err, sizeof(err)), -1);
    /* a malformed control block is an error, not a guess */
    char path[128];
    snprintf(path, sizeof(path), "%s/slots/bootctl.json", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{\"active\": 7}", fp);
    fclose(fp);
    struct adev_ab_boot b;
    assert_int_equal(adev_ab_boot(f->s, &b, err, sizeof(err)), -1);
    assert_int_equal(adev_ab_on_trial(f->s), -1);
    assert_null(adev_ab_running(f->s));
}

static void
test_counters_never_go_down(void **state)
{
    struct fixture *f = *state;
    char err[128] = "";

    assert_int_equal(adev_svn_raise(f->s, "aegis-os", 2), 0);
    assert_int_equal(svn_of(f->s, "aegis-os"), 3);
    assert_int_equal(adev_svn_raise(f->s, "aegis-os", 0), 0);
    assert_int_equal(svn_of(f->s, "aegis-os"), 3);
    /* committing an older image (svn 2) leaves the counter at 3 */
    const struct adev_image older = {PROTO_STAGE_OS, "aegis-os", "0.9.1", 2, os0, sizeof(os0)};
    boot_expect(f->s, 0, 0, "");
    assert_int_equal(adev_ab_stage(f->s, &older, 1, err, sizeof(err)), 0);
    assert_int_equal(adev_ab_arm(f->s, 0, err, sizeof(err)), 0);
    boot_expect(f->s, 1, 1, "");
    assert_int_equal(adev_ab_commit(f->s, err, sizeof(err)), 0);
    assert_int_equal(svn_of(f->s, "aegis-os"), 3);
    boot_expect(f->s, 1, 0, "");
    assert_int_equal(svn_of(f->s, "aegis-os"), 3);
    /* a re-flash at the factory does not lower them either */
    assert_int_equal(adev_ab_factory(f->s, factory_boot, 3, NULL, 0, err, sizeof(err)), 0);
    assert_int_equal(svn_of(f->s, "aegis-os"), 3);
}

/* --- power loss ------------------------------------------------------------------------------ */

enum scenario { SC_COMMIT, SC_REJECT };

struct cut {
    int at;    /* lose power before the at-th change (1-based) */
    int trunc; /* ... and leave a temporary file with a prefix of the data, as a cut write */
    unsigned seed;
    int n; /* changes so far */
};

static void
cut_hook(void *arg, const char *path, const void *data, size_t len)
{
    struct cut *c = arg;
    if (++c->n < c->at)
        return;
    if (c->trunc && data != NULL && len > 0) {
        char tmp[4096];
        const char *slash = strrchr(path, '/');
        int dl = (int)(slash - path);
        snprintf(tmp, sizeof(tmp), "%.*s/.%s.tmp.%d.0", dl, path, slash + 1, (int)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) {
            size_t keep = (size_t)(rand_r(&c->seed) % (unsigned)len);
            ssize_t w = write(fd, data, keep);
            (void)w;
            close(fd);
        }
    }
    _exit(KILLED);
}

/* The operations of the scenario from a booted old system to its end; 0 or -1. */
static int
run_scenario(adev_slots *s, enum scenario sc)
{
    struct adev_ab_boot b;
    char err[128];
    if (adev_ab_stage(s, update, 2, err, sizeof(err)) != 0 || adev_ab_arm(s, 0, err, sizeof(err)))
        return -1;
    if (adev_ab_boot(s, &b, err, sizeof(err)) != 0 || !b.trial)
        return -1;
    if (sc == SC_COMMIT)
        return adev_ab_commit(s, err, sizeof(err));
    if (adev_ab_reject(s, "health_check", err, sizeof(err)) != 0)
        return -1;
    return adev_ab_boot(s, &b, err, sizeof(err)) == 0 && b.slot == 0 ? 0 : -1;
}

/* Runs the scenario in a child that loses power as c says. 1: it was cut, 0: it finished. */
static int
run_cut(const char *dir, enum scenario sc, struct cut *c)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        adev_slots *s = adev_host_slots_open(dir, ADEV_HOST_STORAGE_NOSYNC);
        if (s == NULL)
            _exit(1);
        adev_host_set_write_hook(cut_hook, c);
        _exit(run_scenario(s, sc) == 0 ? 0 : 2);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_true(WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == KILLED);
    return WEXITSTATUS(st) == KILLED;
}

/* No temporary file of an interrupted write survives the power-on. */
static void
assert_no_temps(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "test -z \"$(find '%s' -name '.*.tmp.*')\"", dir);
    assert_int_equal(system(cmd), 0);
}

/* Power on after a cut: the device boots a complete slot holding the old system or the new one,
 * with counters that match its committed slot; returns 1 when it runs the new one. */
static int
power_on(struct fixture *f)
{
    struct adev_ab_boot b;
    char err[128] = "";
    uint8_t c[32];

    adev_slots_free(f->s);
    f->s = adev_host_slots_open(f->dir, ADEV_HOST_STORAGE_NOSYNC);
    assert_non_null(f->s);
    assert_no_temps(f->dir);
    assert_int_equal(adev_ab_boot(f->s, &b, err, sizeof(err)), 0);
    assert_int_equal(measure(f->s, c), 0);
    int is_new = memcmp(c, new_composite, 32) == 0;
    assert_true(is_new || memcmp(c, old_composite, 32) == 0);
    /* the counters are the committed system's: the old one's until the commit, then the new */
    struct adev_bootctl ctl;
    assert_int_equal(adev_bootctl_read(f->s, &ctl), 0);
    int committed_new = ctl.active == 1;
    assert_int_equal(svn_of(f->s, "aegis-os"), committed_new ? 4 : 3);
    assert_int_equal(svn_of(f->s, "thermo"), committed_new ? 2 : 1);
    assert_int_equal(svn_of(f->s, "aegis-bl"), 1);
    assert_true(!committed_new || is_new); /* a committed update runs */
    return is_new;
}

/* Repeats the interrupted operation from wherever the power-on left it, to the scenario's end. */
static void
finish(struct fixture *f, enum scenario sc)
{
    char err[128] = "";
    uint8_t c[32];
    struct adev_bootctl ctl;
    struct adev_ab_boot b;

    assert_int_equal(adev_bootctl_read(f->s, &ctl), 0);
    if (adev_ab_on_trial(f->s) == 1) {
        if (sc == SC_COMMIT)
            assert_int_equal(adev_ab_commit(f->s, err, sizeof(err)), 0);
        else
            assert_int_equal(adev_ab_reject(f->s, "health_check", err, sizeof(err)), 0);
        assert_int_equal(adev_ab_boot(f->s, &b, err, sizeof(err)), 0);
    } else if (ctl.active == 0) {
        assert_int_equal(run_scenario(f->s, sc), 0);
    }
    assert_int_equal(measure(f->s, c), 0);
    assert_memory_equal(c, sc == SC_COMMIT ? new_composite : old_composite, 32);
    assert_int_equal(svn_of(f->s, "aegis-os"), sc == SC_COMMIT ? 4 : 3);
    assert_int_equal(adev_ab_on_trial(f->s), 0);
}

static void
power_loss_matrix(void **state, enum scenario sc)
{
    struct fixture *f = *state;
    int cuts = 0, saw_new = 0, saw_old = 0;

    for (int trunc = 0; trunc < 2; trunc++) {
        for (int rep = 0; rep < (trunc ? 4 : 1); rep++) {
            for (int at = 1;; at++) {
                /* a fresh factory device that booted once */
                assert_int_equal(teardown(state), 0);
                assert_int_equal(setup(state), 0);
                f = *state;
                boot_expect(f->s, 0, 0, "");
                struct cut c = {at, trunc, (unsigned)(at * 7919 + rep * 104729), 0};
                if (!run_cut(f->dir, sc, &c))
                    break; /* at is past the last change: every cut was tried */
                cuts++;
                if (power_on(f))
                    saw_new = 1;
                else
                    saw_old = 1;
                finish(f, sc);
            }
        }
    }
    /* stage (removals, images, manifest), arm, the trial boot, then commit + counters or reject */
    assert_true(cuts >= 2 * 9);
    assert_true(saw_old);
    assert_true(saw_new); /* the trial boot after a cut right after arm runs the new system */
}

static void
test_power_loss_commit(void **state)
{
    power_loss_matrix(state, SC_COMMIT);
}

static void
test_power_loss_reject(void **state)
{
    power_loss_matrix(state, SC_REJECT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_factory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boot_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_never_go_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_loss_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_loss_reject, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
