/* http_reload: the serving certificate chain replaced while the server runs (http.h
 * http_reload_tls). */
#include "http.h"
#include "http_int.h"

#include "app.h"
#include "http_tlskey.h"

int
http_reload_tls(http_server *h, const char *chain_pem, char *err, size_t errlen)
{
    http_tlskey *k = http_tlskey_new(h->app->sg, chain_pem, err, errlen);
    if (k == NULL)
        return -1;
    http_tlskey_replace(h->tls, k);
    h->tls = k;
    return 0;
}

int64_t
http_tls_not_after(const http_server *h)
{
    return h != NULL && h->tls != NULL ? http_tlskey_not_after(h->tls) : 0;
}

void
http_tls_serial(const http_server *h, char buf[41])
{
    buf[0] = '\0';
    if (h != NULL && h->tls != NULL)
        http_tlskey_serial(h->tls, buf);
}
