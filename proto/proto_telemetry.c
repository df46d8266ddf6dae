/* proto_telemetry: the names a telemetry upload may use (proto_telemetry.h). */
#include "proto_telemetry.h"

#include <string.h>

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
