/* hal: the platform-independent helpers of adev_hal.h. */
#include "adev_hal.h"

const char *
adev_net_err_reason(int err)
{
    switch (err) {
    case ADEV_NET_OK:
        return "ok";
    case ADEV_NET_TLS:
        return "tls_error";
    case ADEV_NET_CLOCK:
        return "clock_skew";
    case ADEV_NET_TIMEOUT:
        return "timeout";
    case ADEV_NET_CONNECT:
        return "connect_error";
    case ADEV_NET_TOO_LARGE:
        return "response_too_large";
    case ADEV_NET_CLIENT_CERT:
        return "client_cert_error";
    default:
        return "network_error";
    }
}
