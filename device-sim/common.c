/* common: helpers shared by the aegis-sim commands. */
#include "sim.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int
sim_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return -1;
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int
sim_parse_prob(const char *s, double *out)
{
    if (s == NULL || *s == '\0' || !((*s >= '0' && *s <= '9') || *s == '.'))
        return -1;
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno != 0 || end == NULL || *end != '\0' || !(v >= 0.0 && v <= 1.0))
        return -1;
    *out = v;
    return 0;
}

int
sim_device_dir(const char *fleet, size_t i, char *out)
{
    int n = snprintf(out, SIM_PATH_MAX, "%s/dev-%05zu", fleet, i);
    return n > 0 && n < SIM_PATH_MAX ? 0 : -1;
}

void
sim_free_ids(char **ids, size_t n)
{
    if (ids == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

long
sim_fleet_size(const char *fleet, char ***ids)
{
    long rc = -1;
    char path[SIM_PATH_MAX];
    json_t *root = NULL;
    char **out = NULL;
    size_t n = 0;

    if (ids != NULL)
        *ids = NULL;
    int k = snprintf(path, sizeof(path), "%s/devices.json", fleet);
    if (k <= 0 || (size_t)k >= sizeof(path))
        goto out;
    root = json_load_file(path, 0, NULL);
    if (!json_is_array(root) || json_array_size(root) > SIM_DEVICES_MAX)
        goto out;
    n = json_array_size(root);
    out = calloc(n + 1, sizeof(*out));
    if (out == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(root, i);
        json_t *idx = json_object_get(e, "index");
        json_t *id = json_object_get(e, "device_id");
        if (!json_is_integer(idx) || json_integer_value(idx) != (json_int_t)i ||
            !json_is_string(id) || (out[i] = strdup(json_string_value(id))) == NULL)
            goto out;
    }
    rc = (long)n;
    if (ids != NULL) {
        *ids = out;
        out = NULL;
    }
out:
    sim_free_ids(out, n);
    json_decref(root);
    return rc;
}

char *
sim_read_text(const char *path, size_t max)
{
    FILE *f = NULL;
    char *buf = NULL, *res = NULL;
    size_t len = 0;

    f = fopen(path, "rb");
    if (f == NULL || (buf = malloc(max + 1)) == NULL)
        goto out;
    len = fread(buf, 1, max + 1, f);
    if (ferror(f) || len > max)
        goto out;
    buf[len] = '\0';
    res = buf;
    buf = NULL;
out:
    free(buf);
    if (f != NULL)
        fclose(f);
    return res;
}

int
sim_write_file(const char *path, const char *data, size_t len)
{
    return util_write_file(path, data, len, 0644); /* fleet files are public */
}

int
sim_sync_fs(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = syncfs(fd);
    close(fd);
    return rc == 0 ? 0 : -1;
}

double
sim_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

double
sim_percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_double);
    size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}
