/* provision: "manufactures" a fleet: identity keys in each device's key store, synthetic images
 * and their manifest, and the files the service operator and the tenant need (import.json,
 * refvals.json, devices.json). */
#include "sim.h"

#include "boot.h"
#include "evidence.h"
#include "abboot.h"
#include "hal_host.h"

#include <getopt.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The images every simulated device carries. The OS also keeps an older, lower-svn version (the
 * "old-os" fault boots it). */
#define BL_COMPONENT "aegis-bl"
#define BL_VERSION "1.0.0"
#define BL_SVN 1
#define BL_SIZE 2048
#define OS_COMPONENT "aegis-os"
#define OS_VERSION "2.1.0"
#define OS_SVN 3
#define OS_OLD_VERSION "2.0.0"
#define OS_OLD_SVN 2
#define OS_SIZE 8192
#define APP_DEFAULT "aegis-app"
#define APP_VERSION "1.0.0"
#define APP_SVN 1
#define APP_SIZE 4096
#define HW_DEFAULT "sim-hw"

/* Deterministic image bytes per component and version: SHA256(component 00 version 00 ctr). */
static uint8_t *
synth_image(const char *component, const char *version, size_t size)
{
    uint8_t *img = NULL, *res = NULL;
    uint8_t block[32], seed[256];
    size_t nc = strlen(component), nv = strlen(version);

    if (nc + nv + 6 > sizeof(seed) || (img = malloc(size)) == NULL)
        goto out;
    memcpy(seed, component, nc);
    seed[nc] = 0;
    memcpy(seed + nc + 1, version, nv);
    seed[nc + 1 + nv] = 0;
    size_t base = nc + nv + 2;
    for (size_t off = 0, ctr = 0; off < size; off += 32, ctr++) {
        seed[base] = (uint8_t)(ctr >> 24);
        seed[base + 1] = (uint8_t)(ctr >> 16);
        seed[base + 2] = (uint8_t)(ctr >> 8);
        seed[base + 3] = (uint8_t)ctr;
        if (proto_sha256(seed, base + 4, block) != 0)
            goto out;
        memcpy(img + off, block, size - off < 32 ? size - off : 32);
    }
    res = img;
    img = NULL;
out:
    free(img);
    return res;
}

static json_t *
refval(const struct adev_image *im)
{
    uint8_t digest[32];
    char hex[PROTO_HASH_HEX + 1];
    if (proto_sha256(im->data, im->len, digest) != 0)
        return NULL;
    proto_hex(digest, 32, hex);
    return json_pack("{s:s, s:s, s:s, s:I, s:s}", "stage", proto_stage_name(im->stage), "component",
                     im->component, "version", im->version, "svn", (json_int_t)im->svn, "digest",
                     hex);
}

/* PEM SubjectPublicKeyInfo of a DER one (malloc'd), or NULL. */
static char *
spki_pem(const uint8_t *der, size_t len)
{
    const uint8_t *p = der;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)len);
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL, *data = NULL;

    if (pub != NULL && bio != NULL && PEM_write_bio_PUBKEY(bio, pub) == 1) {
        long n = BIO_get_mem_data(bio, &data);
        if (n > 0 && (out = malloc((size_t)n + 1)) != NULL) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(bio);
    EVP_PKEY_free(pub);
    return out;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: aegis-sim provision --devices N --dir D [--tenant-app NAME] [--hardware H]\n"
               "  Creates N device directories D/dev-NNNNN with identity keys and images, and\n"
               "  D/import.json, D/refvals.json, D/devices.json. Existing identity keys are kept.\n"
               "  --tenant-app NAME   component name of the app image (default " APP_DEFAULT ")\n"
               "  --hardware H        the devices' hardware class, kept in D/fleet.json (default "
               "" HW_DEFAULT ")\n");
}

/* Writes one device: key store, images and manifest. Appends its public key and ID. */
static int
provision_one(const char *fleet, size_t i, const struct adev_image *boot,
              const struct adev_image *prev, json_t *import, json_t *devices)
{
    int rc = -1;
    char dir[SIM_PATH_MAX], idhex[PROTO_HASH_HEX + 1];
    adev_keystore *ks = NULL;
    adev_storage *st = NULL;
    adev_slots *slots = NULL;
    char err[256] = "";
    uint8_t spki[ADEV_SPKI_LEN], id[32];
    char *pem = NULL;

    if (sim_device_dir(fleet, i, dir) != 0 || adev_host_keystore_create(dir, NULL) != 0 ||
        (ks = adev_host_keystore_open(dir)) == NULL ||
        (st = adev_host_storage_open_flags(dir, ADEV_HOST_STORAGE_NOSYNC)) == NULL)
        goto out;
    if (adev_boot_install(st, boot, 3, prev, 1) != 0)
        goto out;
    /* the same system in A/B slots, for `update` (the storage's manifest stays for `run`) */
    if ((slots = adev_host_slots_open(dir, ADEV_HOST_STORAGE_NOSYNC)) == NULL ||
        adev_ab_factory(slots, boot, 3, prev, 1, err, sizeof(err)) != 0) {
        fprintf(stderr, "aegis-sim provision: slots: %s\n", err);
        goto out;
    }
    if (adev_keystore_public_der(ks, spki) != 0 || adev_device_id(spki, id) != 0 ||
        (pem = spki_pem(spki, sizeof(spki))) == NULL)
        goto out;
    proto_hex(id, 32, idhex);
    if (json_array_append_new(import, json_string(pem)) != 0 ||
        json_array_append_new(devices,
                              json_pack("{s:I, s:s, s:s}", "index", (json_int_t)i, "device_id",
                                        idhex, "dir", strrchr(dir, '/') + 1)) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "aegis-sim provision: device %zu (%s) failed\n", i, dir);
    free(pem);
    adev_slots_free(slots);
    adev_storage_free(st);
    adev_keystore_free(ks);
    return rc;
}

static int
dump_to(const char *fleet, const char *name, json_t *v)
{
    char path[SIM_PATH_MAX];
    char *text = NULL;
    int rc = -1;
    int n = snprintf(path, sizeof(path), "%s/%s", fleet, name);
    if (n > 0 && (size_t)n < sizeof(path) &&
        (text = json_dumps(v, JSON_INDENT(1) | JSON_PRESERVE_ORDER)) != NULL) {
        size_t len = strlen(text);
        text[len] = '\0';
        rc = sim_write_file(path, text, len);
    }
    if (rc != 0)
        fprintf(stderr, "aegis-sim provision: cannot write %s\n", path);
    free(text);
    return rc;
}

int
sim_provision(int argc, char **argv)
{
    int rc = SIM_EXIT_ERROR;
    const char *fleet = NULL, *app = APP_DEFAULT, *hw = HW_DEFAULT;
    int64_t n = 0;
    uint8_t *bl = NULL, *os = NULL, *os_old = NULL, *appimg = NULL;
    json_t *import = NULL, *refvals = NULL, *devices = NULL, *info = NULL;
    static const struct option opts[] = {{"devices", required_argument, NULL, 'n'},
                                         {"dir", required_argument, NULL, 'd'},
                                         {"tenant-app", required_argument, NULL, 'a'},
                                         {"hardware", required_argument, NULL, 'H'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (sim_parse_i64(optarg, 1, SIM_DEVICES_MAX, &n) != 0) {
                fprintf(stderr, "aegis-sim provision: --devices must be 1..%d\n", SIM_DEVICES_MAX);
                return SIM_EXIT_USAGE;
            }
            break;
        case 'd':
            fleet = optarg;
            break;
        case 'a':
            app = optarg;
            break;
        case 'H':
            hw = optarg;
            break;
        case 'h':
            usage(stdout);
            return SIM_EXIT_OK;
        default:
            usage(stderr);
            return SIM_EXIT_USAGE;
        }
    }
    if (optind != argc || fleet == NULL || n == 0) {
        usage(stderr);
        return SIM_EXIT_USAGE;
    }
    struct proto_event probe;
    memset(&probe, 0, sizeof(probe));
    probe.stage = PROTO_STAGE_APP;
    snprintf(probe.version, sizeof(probe.version), "%s", APP_VERSION);
    if (strlen(app) > PROTO_COMPONENT_MAX ||
        snprintf(probe.component, sizeof(probe.component), "%s", app) < 0 ||
        proto_event_check(&probe) != 0) {
        fprintf(stderr, "aegis-sim provision: --tenant-app must be 1-64 chars of [a-z0-9._-]\n");
        return SIM_EXIT_USAGE;
    }
    if (!proto_component_ok(hw, strlen(hw))) { /* the image rule of a hardware class */
        fprintf(stderr, "aegis-sim provision: --hardware must be 1-64 chars of [a-z0-9._-]\n");
        return SIM_EXIT_USAGE;
    }
    if (mkdir(fleet, 0755) != 0) {
        struct stat stt;
        if (stat(fleet, &stt) != 0 || !S_ISDIR(stt.st_mode)) {
            fprintf(stderr, "aegis-sim provision: cannot create %s\n", fleet);
            goto out;
        }
    }
    bl = synth_image(BL_COMPONENT, BL_VERSION, BL_SIZE);
    os = synth_image(OS_COMPONENT, OS_VERSION, OS_SIZE);
    os_old = synth_image(OS_COMPONENT, OS_OLD_VERSION, OS_SIZE);
    appimg = synth_image(app, APP_VERSION, APP_SIZE);
    import = json_array();
    refvals = json_array();
    devices = json_array();
    if (bl == NULL || os == NULL || os_old == NULL || appimg == NULL || import == NULL ||
        refvals == NULL || devices == NULL)
        goto out;
    const struct adev_image boot[3] = {
        {PROTO_STAGE_BOOTLOADER, BL_COMPONENT, BL_VERSION, BL_SVN, bl, BL_SIZE},
        {PROTO_STAGE_OS, OS_COMPONENT, OS_VERSION, OS_SVN, os, OS_SIZE},
        {PROTO_STAGE_APP, app, APP_VERSION, APP_SVN, appimg, APP_SIZE},
    };
    const struct adev_image prev = {PROTO_STAGE_OS, OS_COMPONENT, OS_OLD_VERSION,
                                    OS_OLD_SVN,     os_old,       OS_SIZE};
    if (json_array_append_new(refvals, refval(&boot[0])) != 0 ||
        json_array_append_new(refvals, refval(&boot[1])) != 0 ||
        json_array_append_new(refvals, refval(&prev)) != 0 ||
        json_array_append_new(refvals, refval(&boot[2])) != 0)
        goto out;
    for (size_t i = 0; i < (size_t)n; i++) {
        if (provision_one(fleet, i, boot, &prev, import, devices) != 0)
            goto out;
    }
    /* images were written without fsync (bulk): make everything durable once */
    if (sim_sync_fs(fleet) != 0) {
        fprintf(stderr, "aegis-sim provision: cannot sync %s\n", fleet);
        goto out;
    }
    if (dump_to(fleet, "import.json", import) != 0 ||
        dump_to(fleet, "refvals.json", refvals) != 0 ||
        dump_to(fleet, "devices.json", devices) != 0 ||
        (info = json_pack("{s:s, s:s}", "hardware", hw, "app", app)) == NULL ||
        dump_to(fleet, "fleet.json", info) != 0)
        goto out;
    printf("provisioned %lld devices in %s (app %s)\n", (long long)n, fleet, app);
    rc = SIM_EXIT_OK;
out:
    free(bl);
    free(os);
    free(os_old);
    free(appimg);
    json_decref(import);
    json_decref(refvals);
    json_decref(devices);
    json_decref(info);
    return rc;
}
