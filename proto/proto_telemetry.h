/* proto_telemetry: the limits and names of a telemetry upload (docs/telemetry.md section 1),
 * defined once for the service's parser (server/device/telemetry_parse.c), the reference device's
 * crash queue (firmware-ref/crash.c), the simulator and the tests. Field syntax is in
 * proto_fields.h. */
#ifndef AEGIS_PROTO_TELEMETRY_H
#define AEGIS_PROTO_TELEMETRY_H

#include "proto_fields.h"

#include <stddef.h>
#include <stdint.h>

#define PROTO_TEL_BODY_MAX (256 * 1024)            /* bytes of one upload's body */
#define PROTO_TEL_REPORTS_MAX 100                  /* reports in one upload */
#define PROTO_TEL_REPORT_ID_MAX 9007199254740991LL /* 2^53 - 1 */
#define PROTO_TEL_U32_MAX 4294967295LL             /* uptime_s, dropped, free_memory */
#define PROTO_TEL_PERIOD_MAX 86400                 /* period_s: 1..86400 seconds */
#define PROTO_TEL_COUNTER_MAX 9007199254740991LL   /* a heartbeat counter: 0..2^53 - 1 */
#define PROTO_TEL_BOOT_ID_HEX 32                   /* boot ids: 32 lower-case hex characters */
#define PROTO_TEL_FRAMES_MAX 8                     /* return addresses of a crash */
#define PROTO_TEL_SIG_FRAMES 3    /* of which the crash signature takes the first 3 */
#define PROTO_TEL_ADDR_HEX_MAX 16 /* an address: "0x" and 1..16 hex digits */
#define PROTO_TEL_ADDR_LEN (2 + PROTO_TEL_ADDR_HEX_MAX + 1) /* its normal form and a NUL */
#define PROTO_TEL_REGISTERS_MAX 8                           /* fault registers of a crash */
#define PROTO_TEL_REGISTER_NAME_MAX 16
#define PROTO_TEL_COUNTERS_MAX 16 /* counters of a heartbeat */
#define PROTO_TEL_COUNTER_NAME_MAX 32
#define PROTO_TEL_IMAGES_MAX 8    /* images a heartbeat or crash names */
#define PROTO_TEL_MESSAGE_MAX 256 /* bytes of a crash message */
#define PROTO_TEL_REASON_MAX 32   /* a crash or reboot reason */
/* Names of registers, counters and reasons: [a-z0-9_]. */
#define PROTO_TEL_NAME_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_"

/* The types of report, as the wire names them ("type"). */
enum proto_tel_type {
    PROTO_TEL_CRASH = 1,
    PROTO_TEL_HEARTBEAT = 2,
    PROTO_TEL_REBOOT = 3,
};

/* "crash", "heartbeat", "reboot", or NULL for any other code. */
const char *proto_tel_type_name(int type);
/* The type of a name of len bytes, or -1. */
int proto_tel_type_parse(const char *name, size_t len);

/* An address's normal form, in which it is stored and bucketed: lower-case hex without leading
 * zeros ("0x0800ABCD" -> "0x800abcd", zero is "0x0"). */
/* Normalises in[0..len), "0x" and 1..16 hex digits of either case, into out. Returns 0, or -1
 * when in is not such an address (a NUL inside included). */
int proto_tel_addr_norm(const char *in, size_t len, char out[PROTO_TEL_ADDR_LEN]);
/* The normal form of the address v. */
void proto_tel_addr_format(uint64_t v, char out[PROTO_TEL_ADDR_LEN]);

/* The reasons a reboot report may give, NULL-terminated. */
extern const char *const proto_tel_reboot_reasons[];
/* 1 when s[0..len) is one of them. */
int proto_tel_reboot_reason_ok(const char *s, size_t len);

#endif
