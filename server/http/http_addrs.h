/* http_addrs: open connections per client address, for the per-address limit (http_conns.c). An
 * open-addressing table of 16-byte addresses (IPv4 mapped into IPv6) with counts, hashed with a
 * keyed SipHash (a random key per table, so no client can aim at collisions); an address whose
 * count falls to 0 is removed, so the table holds only addresses with open connections. Not
 * thread-safe (the caller's lock). */
#ifndef AEGIS_HTTP_ADDRS_H
#define AEGIS_HTTP_ADDRS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HTTP_ADDR_LEN 16

typedef struct http_addrs http_addrs;

/* The caller's list of the connections of one address, kept in the address's slot. */
struct http_addr_list {
    void *oldest, *newest;
};

/* A new empty table (free with http_addrs_free), or NULL when out of memory. */
http_addrs *http_addrs_new(void);
void http_addrs_free(http_addrs *a);

/* The 16-byte key of sa (IPv4 as ::ffff:a.b.c.d): 0, or -1 for a family without an address. */
int http_addrs_key(const struct sockaddr *sa, unsigned char key[HTTP_ADDR_LEN]);
/* The connections counted for key (0 when absent). */
uint32_t http_addrs_count(const http_addrs *a, const unsigned char key[HTTP_ADDR_LEN]);
/* Counts one more for key: 0, or -1 when out of memory (nothing counted). */
int http_addrs_add(http_addrs *a, const unsigned char key[HTTP_ADDR_LEN]);
/* Counts one fewer for key, which must have been added. */
void http_addrs_remove(http_addrs *a, const unsigned char key[HTTP_ADDR_LEN]);
/* The list of key (empty when just added), or NULL when key is absent. Valid until the next
 * http_addrs_add or http_addrs_remove. */
struct http_addr_list *http_addrs_list(http_addrs *a, const unsigned char key[HTTP_ADDR_LEN]);
/* Addresses in the table. */
size_t http_addrs_size(const http_addrs *a);

#endif
