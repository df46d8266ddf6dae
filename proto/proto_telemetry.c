/* proto_telemetry: the names and address form of a telemetry upload (proto_telemetry.h). */
#include "proto_telemetry.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const type_names[] = {NULL, "crash", "heartbeat", "reboot"};

const char *
proto_tel_type_name(int type)
{
    return type >= PROTO_TEL_CRASH && type <= PROTO_TEL_REBOOT ? type_names[type] : NULL;
}

int
proto_tel_type_parse(const char *name, size_t len)
{
    return proto_name_index(type_names, PROTO_TEL_CRASH, PROTO_TEL_REBOOT + 1, name, len);
}

int
proto_tel_addr_norm(const char *in, size_t len, char out[PROTO_TEL_ADDR_LEN])
{
    size_t i = 2, o = 2;
    if (in == NULL || len < 3 || len > 2 + PROTO_TEL_ADDR_HEX_MAX || in[0] != '0' || in[1] != 'x')
        return -1;
    for (size_t k = 2; k < len; k++) {
        char ch = in[k];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
            return -1;
    }
    while (i + 1 < len && in[i] == '0')
        i++;
    out[0] = '0';
    out[1] = 'x';
    for (; i < len; i++)
        out[o++] = (char)(in[i] >= 'A' && in[i] <= 'F' ? in[i] - 'A' + 'a' : in[i]);
    out[o] = '\0';
    return 0;
}

void
proto_tel_addr_format(uint64_t v, char out[PROTO_TEL_ADDR_LEN])
{
    snprintf(out, PROTO_TEL_ADDR_LEN, "0x%" PRIx64, v);
}

const char *const proto_tel_reboot_reasons[] = {"crash", "watchdog", "power", "update",
                                                "user",  "unknown",  NULL};

int
proto_tel_reboot_reason_ok(const char *s, size_t len)
{
    int n = 0;
    while (proto_tel_reboot_reasons[n] != NULL)
        n++;
    return proto_name_index(proto_tel_reboot_reasons, 0, n, s, len) >= 0;
}
