/* Unit tests for server/http/http_addrs.c: counts per address, IPv4 mapped like IPv6's ::ffff:,
 * removal that keeps every other address findable (backward shift) through growth. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_addrs.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static void
key_of(uint32_t i, unsigned char key[HTTP_ADDR_LEN])
{
    memset(key, 0, HTTP_ADDR_LEN);
    key[0] = 0x20;
    memcpy(key + 12, &i, sizeof(i));
}

static void
test_count_add_remove(void **state)
{
    (void)state;
    http_addrs *a = http_addrs_new();
    assert_non_null(a);
    unsigned char k[HTTP_ADDR_LEN], k6[HTTP_ADDR_LEN];
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr);
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &v6.sin6_addr);
    assert_int_equal(http_addrs_key((struct sockaddr *)&v4, k), 0);
    assert_int_equal(http_addrs_key((struct sockaddr *)&v6, k6), 0);
    assert_memory_equal(k, k6, HTTP_ADDR_LEN); /* one client, whichever socket family */
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_int_equal(http_addrs_key(&un, k6), -1);
    assert_int_equal(http_addrs_key(NULL, k6), -1);

    assert_int_equal(http_addrs_count(a, k), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(http_addrs_add(a, k), 0);
    assert_int_equal(http_addrs_count(a, k), 3);
    assert_int_equal(http_addrs_size(a), 1);
    http_addrs_remove(a, k);
    http_addrs_remove(a, k);
    assert_int_equal(http_addrs_count(a, k), 1);
    http_addrs_remove(a, k);
    assert_int_equal(http_addrs_count(a, k), 0);
    assert_int_equal(http_addrs_size(a), 0);
    http_addrs_free(a);
}

static void
test_many_addresses(void **state)
{
    (void)state;
    enum { N = 5000 };
    http_addrs *a = http_addrs_new();
    unsigned char k[HTTP_ADDR_LEN];
    assert_non_null(a);
    for (uint32_t i = 0; i < N; i++) {
        key_of(i, k);
        for (uint32_t j = 0; j <= i % 3; j++)
            assert_int_equal(http_addrs_add(a, k), 0);
    }
    assert_int_equal(http_addrs_size(a), N);
    /* Remove every even address entirely: the odd ones keep their counts. */
    for (uint32_t i = 0; i < N; i += 2) {
        key_of(i, k);
        for (uint32_t j = 0; j <= i % 3; j++)
            http_addrs_remove(a, k);
    }
    assert_int_equal(http_addrs_size(a), N / 2);
    for (uint32_t i = 0; i < N; i++) {
        key_of(i, k);
        assert_int_equal(http_addrs_count(a, k), i % 2 ? i % 3 + 1 : 0);
    }
    http_addrs_free(a);
    http_addrs_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_add_remove),
        cmocka_unit_test(test_many_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
