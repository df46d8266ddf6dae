/* Unit tests of server/update/upd_recovery.c: a grant opens exactly its images for its device until
 * it expires, a new grant replaces the device's earlier one, unknown or malformed tokens open
 * nothing, and the table stays bounded (the oldest grant goes first). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "upd_recovery.h"

#include <stdio.h>
#include <string.h>

static struct upd_recovery_grant
grant_of(int64_t tenant, int dev, const char *img)
{
    struct upd_recovery_grant g;
    memset(&g, 0, sizeof(g));
    g.tenant_id = tenant;
    snprintf(g.device_id, sizeof(g.device_id), "%064d", dev);
    if (img != NULL) {
        snprintf(g.images[0], sizeof(g.images[0]), "%s", img);
        g.nimages = 1;
    }
    return g;
}

static const char IMG_A[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char IMG_B[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static void
test_grant_find_expire(void **state)
{
    (void)state;
    upd_recovery *rc = upd_recovery_new();
    char tok[UPD_RECOVERY_TOKEN_HEX], tok2[UPD_RECOVERY_TOKEN_HEX];
    struct upd_recovery_grant g = grant_of(3, 1, IMG_A), got;
    assert_int_equal(upd_recovery_grant(rc, &g, 1000, tok), 0);
    assert_int_equal(strlen(tok), 64);
    assert_int_equal(upd_recovery_find(rc, tok, 1000 + UPD_RECOVERY_TTL_S - 1, &got), 0);
    assert_int_equal(got.tenant_id, 3);
    assert_string_equal(got.device_id, g.device_id);
    assert_true(upd_recovery_allows(&got, IMG_A));
    assert_false(upd_recovery_allows(&got, IMG_B));
    assert_int_equal(upd_recovery_find(rc, tok, 1000 + UPD_RECOVERY_TTL_S, &got), -1);
    /* wrong, short and missing tokens */
    char bad[UPD_RECOVERY_TOKEN_HEX];
    memcpy(bad, tok, sizeof(bad));
    bad[0] = bad[0] == 'a' ? 'b' : 'a';
    assert_int_equal(upd_recovery_find(rc, bad, 1000, &got), -1);
    assert_int_equal(upd_recovery_find(rc, "abc", 1000, &got), -1);
    assert_int_equal(upd_recovery_find(rc, NULL, 1000, &got), -1);
    /* a new grant for the device replaces the old one */
    struct upd_recovery_grant g2 = grant_of(3, 1, IMG_B);
    assert_int_equal(upd_recovery_grant(rc, &g2, 1010, tok2), 0);
    assert_int_equal(upd_recovery_find(rc, tok, 1010, &got), -1);
    assert_int_equal(upd_recovery_find(rc, tok2, 1010, &got), 0);
    assert_true(upd_recovery_allows(&got, IMG_B));
    /* malformed grants are refused */
    struct upd_recovery_grant badg = grant_of(0, 2, IMG_A);
    assert_int_equal(upd_recovery_grant(rc, &badg, 1000, tok), -1);
    badg = grant_of(1, 2, "abc");
    assert_int_equal(upd_recovery_grant(rc, &badg, 1000, tok), -1);
    upd_recovery_free(rc);
}

static void
test_bounded(void **state)
{
    (void)state;
    upd_recovery *rc = upd_recovery_new();
    static char toks[UPD_RECOVERY_MAX + 1][UPD_RECOVERY_TOKEN_HEX];
    struct upd_recovery_grant got;
    for (int i = 0; i <= UPD_RECOVERY_MAX; i++) {
        struct upd_recovery_grant g = grant_of(1, i + 1, IMG_A);
        assert_int_equal(upd_recovery_grant(rc, &g, 5000, toks[i]), 0);
    }
    /* the first grant made room for the last one */
    assert_int_equal(upd_recovery_find(rc, toks[0], 5000, &got), -1);
    assert_int_equal(upd_recovery_find(rc, toks[1], 5000, &got), 0);
    assert_int_equal(upd_recovery_find(rc, toks[UPD_RECOVERY_MAX], 5000, &got), 0);
    upd_recovery_free(rc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grant_find_expire),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
