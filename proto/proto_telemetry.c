/* proto_telemetry: the names a telemetry upload may use (proto_telemetry.h). */
#include "proto_telemetry.h"

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
    for (int i = PROTO_TEL_CRASH; name != NULL && i <= PROTO_TEL_REBOOT; i++) {
        if (strlen(type_names[i]) == len && memcmp(name, type_names[i], len) == 0)
            return i;
    }
    return -1;
}

const char *const proto_tel_reboot_reasons[] = {"crash", "watchdog", "power", "update",
                                                "user",  "unknown",  NULL};

int
proto_tel_reboot_reason_ok(const char *s, size_t len)
{
    for (size_t i = 0; s != NULL && proto_tel_reboot_reasons[i] != NULL; i++) {
        if (strlen(proto_tel_reboot_reasons[i]) == len &&
            memcmp(s, proto_tel_reboot_reasons[i], len) == 0)
            return 1;
    }
    return 0;
}
