/* aegisctl commands that work on the data directory directly: the PKI, tenants and database
 * migrations. They run on the machine of the daemon, as the user that owns the data directory. */
#include "cmd_local.h"

#include "ctl_args.h"
#include "ctl_print.h"
#include "ctl_store.h"

#include "auth.h"
#include "pki.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TENANT_CA_LIFETIME_S (2 * 365 * 86400LL)
#define TENANT_NAME_MAX 64
#define DEFAULT_HOSTS "localhost,127.0.0.1,::1"

static int
tenant_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > TENANT_NAME_MAX)
        return 0;
    for (const char *p = name; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

/* 1 if the PKI directory has been initialised (the service root's certificate is there; its key
 * may be offline: tenants need only their own device roots), else prints how and returns 0. */
static int
pki_ready(struct ctl *c)
{
    char crt[PATH_MAX];
    if (snprintf(crt, sizeof(crt), "%s/root.crt", c->cfg.pki_dir) >= (int)sizeof(crt)) {
        ctl_err("pki_dir path too long");
        return 0;
    }
    if (access(crt, F_OK) != 0) {
        ctl_err("the PKI is not initialised (no %s): run `aegisctl pki init` first", crt);
        return 0;
    }
    return 1;
}

/* What make_tenant_ca made. */
struct ca_made {
    int64_t id;
    char key_name[128];
    int64_t not_before, not_after;
};

/* Makes the tenant's device root unless it exists, and records its certificate in the database
 * (which hands it to devices) unless it is there already. Once the database has a root, a missing
 * root file is an error, never a new root: devices hold the old one. 0 / -1 (error printed). */
static int
record_tenant_root(struct ctl *c, store *st, int64_t tenant_id, const char *tenant_name)
{
    char err[512];
    char *pem = NULL, *stored = NULL;
    int rc = -1;
    struct store_actor actor = {tenant_id, "aegisctl"};

    err[0] = '\0';
    if (store_tenant_device_root(st, tenant_id, &stored) != STORE_OK) {
        ctl_err("tenant %s: cannot read its device root (database error)", tenant_name);
        goto out;
    }
    if (pki_tenant_root(c->cfg.pki_dir, tenant_id, tenant_name, stored == NULL, &pem, NULL, err,
                        sizeof(err)) != 0) {
        ctl_err("tenant %s: no device root: %s", tenant_name, err);
        goto out;
    }
    if (stored != NULL && strcmp(stored, pem) != 0) {
        ctl_err("tenant %s: the device root in %s is not the one its devices hold (in the "
                "database); restore the original",
                tenant_name, c->cfg.pki_dir);
        goto out;
    }
    if (stored == NULL && store_tenant_set_device_root(st, tenant_id, pem, &actor) != STORE_OK) {
        ctl_err("tenant %s: its device root could not be recorded in the database", tenant_name);
        goto out;
    }
    rc = 0;
out:
    free(pem);
    free(stored);
    return rc;
}

/* Creates an issuing CA for the tenant and records it as the active one. Returns 0 / -1 (error
 * printed). */
static int
make_tenant_ca(struct ctl *c, store *st, int64_t tenant_id, const char *tenant_name,
               struct ca_made *m)
{
    char err[512];
    char *cert_pem = NULL;
    int rc = -1;
    struct store_actor actor = {tenant_id, "aegisctl"};
    memset(m, 0, sizeof(*m));
    err[0] = '\0';
    if (record_tenant_root(c, st, tenant_id, tenant_name) != 0)
        goto out;
    if (pki_tenant_ca_create(c->cfg.pki_dir, tenant_id, tenant_name, TENANT_CA_LIFETIME_S,
                             m->key_name, sizeof(m->key_name), &cert_pem, &m->not_before,
                             &m->not_after, err, sizeof(err)) != 0) {
        ctl_err("tenant %s: cannot create an issuing CA: %s", tenant_name, err);
        goto out;
    }
    if (store_ca_add(st, tenant_id, cert_pem, m->key_name, m->not_before, m->not_after, 1, &actor,
                     &m->id) != STORE_OK) {
        ctl_err("tenant %s: issuing CA %s was created but could not be recorded in the database",
                tenant_name, m->key_name);
        goto out;
    }
    rc = 0;
out:
    free(cert_pem);
    return rc;
}

/* 1 when the tenant needs a new issuing CA: it has none, or no device root, or its active CA (cas
 * come active first) was not issued by its device root (made before device roots existed, or a
 * move onto the root that stopped half-way). 0 if not, -1 on a database error. */
static int
tenant_needs_ca(store *st, int64_t tid, const struct store_ca *cas, size_t ncas)
{
    char *root = NULL;
    if (store_tenant_device_root(st, tid, &root) != STORE_OK)
        return -1;
    int need =
        ncas == 0 || root == NULL || !cas[0].active || !pki_pem_issued_by(cas[0].cert_pem, root);
    free(root);
    return need;
}

/* After a move onto the device root: deletes the private keys of the tenant's earlier CAs that the
 * root did not issue (signed by the service root). They sign nothing any more; their certificates
 * stay in the trust bundle until they expire, for the devices certificates they issued. */
static void
retire_old_ca_keys(struct ctl *c, store *st, int64_t tid, const struct store_ca *cas, size_t ncas)
{
    char *root = NULL, path[PATH_MAX];
    if (store_tenant_device_root(st, tid, &root) != STORE_OK || root == NULL)
        goto out;
    for (size_t i = 0; i < ncas; i++) {
        if (cas[i].key_name == NULL || pki_pem_issued_by(cas[i].cert_pem, root))
            continue;
        if (snprintf(path, sizeof(path), "%s/%s.key", c->cfg.pki_dir, cas[i].key_name) >=
            (int)sizeof(path))
            continue;
        if (unlink(path) == 0 && !c->json)
            printf("removed the key of %s, which the service root had signed\n", cas[i].key_name);
    }
out:
    free(root);
}

static json_t *
ca_json(int64_t tenant_id, const char *tenant_name, const struct ca_made *m)
{
    char nb[32], na[32];
    return json_pack("{s:I, s:s, s:I, s:s, s:s, s:s}", "tenant_id", (json_int_t)tenant_id, "tenant",
                     tenant_name, "ca_id", (json_int_t)m->id, "key_name", m->key_name, "not_before",
                     util_rfc3339(m->not_before, nb, sizeof(nb)), "not_after",
                     util_rfc3339(m->not_after, na, sizeof(na)));
}

/* Adds the value to the array (stolen); -1 if either is missing (out of memory). */
static int
append(json_t *arr, json_t *v)
{
    if (arr == NULL || v == NULL) {
        json_decref(v);
        return -1;
    }
    return json_array_append_new(arr, v);
}

static int
ctl_pki_init(struct ctl *c, int argc, char **argv)
{
    const char *hosts = NULL;
    const struct ctl_opt opts[] = {{"--hosts", CTL_OPT_STR, &hosts, NULL}, {NULL, 0, NULL, NULL}};
    char err[512];
    store *st = NULL;
    struct store_tenant *tenants = NULL;
    size_t ntenants = 0;
    json_t *made = NULL;
    int rc = CTL_EXIT_LOCAL, created = 0, applied = 0;

    int pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (hosts == NULL)
        hosts = DEFAULT_HOSTS;
    if (hosts[0] == '\0')
        return ctl_usage_error(c, "--hosts: empty list");
    if (ctl_config(c) != 0)
        return CTL_EXIT_LOCAL;
    if (ctl_make_parent_dir(c->cfg.pki_dir) != 0)
        return CTL_EXIT_LOCAL;
    err[0] = '\0';
    if (pki_init_dir(c->cfg.pki_dir, hosts, &created, err, sizeof(err)) != 0) {
        ctl_err("pki init %s: %s", c->cfg.pki_dir, err);
        return CTL_EXIT_LOCAL;
    }
    if (!c->json) {
        if (created)
            printf("created the service root CA and server certificate in %s\n", c->cfg.pki_dir);
        else
            printf("PKI in %s already initialised\n", c->cfg.pki_dir);
    }

    rc = ctl_store_open(c, 1, &st, &applied);
    if (rc != CTL_EXIT_OK)
        goto out;
    rc = CTL_EXIT_LOCAL;
    if (store_tenant_load_all(st, &tenants, &ntenants) != STORE_OK) {
        ctl_err("cannot list tenants (database error)");
        goto out;
    }
    made = json_array();
    if (made == NULL)
        goto out;
    for (size_t i = 0; i < ntenants; i++) {
        struct store_ca *cas = NULL;
        size_t ncas = 0;
        int64_t tid = tenants[i].id;
        const char *name = tenants[i].name;
        if (store_ca_load_all(st, tid, util_now(), &cas, &ncas) != STORE_OK) {
            ctl_err("tenant %s: cannot list its issuing CAs (database error)", name);
            goto out;
        }
        int need = tenant_needs_ca(st, tid, cas, ncas);
        if (need < 0) {
            ctl_err("tenant %s: cannot read its device root (database error)", name);
            store_ca_free(cas, ncas);
            goto out;
        }
        if (need == 0) {
            store_ca_free(cas, ncas);
            continue;
        }
        struct ca_made m;
        int made_ok = make_tenant_ca(c, st, tid, name, &m) == 0;
        if (made_ok)
            retire_old_ca_keys(c, st, tid, cas, ncas);
        store_ca_free(cas, ncas);
        if (!made_ok || append(made, ca_json(tid, name, &m)) != 0)
            goto out;
        if (!c->json) {
            char na[32];
            printf("tenant %s (id %lld): created issuing CA %s, valid until %s\n", name,
                   (long long)tid, m.key_name, util_rfc3339(m.not_after, na, sizeof(na)));
        }
    }
    if (c->json) {
        json_t *o = json_pack("{s:s, s:b, s:s, s:i, s:O}", "pki_dir", c->cfg.pki_dir, "created",
                              created, "database", c->cfg.database, "migrations_applied", applied,
                              "tenant_cas", made);
        if (o == NULL)
            goto out;
        ctl_print_json(o);
        json_decref(o);
    }
    rc = CTL_EXIT_OK;
out:
    json_decref(made);
    free(tenants);
    store_close(st);
    return rc;
}

static int
ctl_pki_rotate(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    store *st = NULL;
    int64_t tid = 0;
    struct ca_made m;
    char na[32];
    int rc;

    int pr = ctl_parse(c, argc, argv, NULL, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (!tenant_name_ok(pos[0]))
        return ctl_usage_error(c, "TENANT_NAME: 1-64 characters of [a-zA-Z0-9._-]");
    if (ctl_config(c) != 0 || !pki_ready(c))
        return CTL_EXIT_LOCAL;
    rc = ctl_store_open(c, 0, &st, NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = CTL_EXIT_LOCAL;
    int r = store_tenant_find(st, pos[0], &tid);
    if (r == STORE_NOTFOUND) {
        ctl_err("no tenant named '%s'", pos[0]);
        goto out;
    }
    if (r != STORE_OK) {
        ctl_err("cannot look up tenant '%s' (database error)", pos[0]);
        goto out;
    }
    if (make_tenant_ca(c, st, tid, pos[0], &m) != 0)
        goto out;
    if (c->json) {
        json_t *o = ca_json(tid, pos[0], &m);
        if (o == NULL)
            goto out;
        ctl_print_json(o);
        json_decref(o);
    } else {
        printf("tenant %s (id %lld): new active issuing CA %s (id %lld), valid until %s\n"
               "older issuing CAs stay listed until they expire\n",
               pos[0], (long long)tid, m.key_name, (long long)m.id,
               util_rfc3339(m.not_after, na, sizeof(na)));
    }
    rc = CTL_EXIT_OK;
out:
    store_close(st);
    return rc;
}

/* 1 if the directory that will hold path is writable. */
static int
parent_writable(const char *path)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
        return 0;
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return access(".", W_OK) == 0;
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    return access(dir, W_OK) == 0;
}

/* A new API token of tenant tid (label, role) into token (AUTH_TOKEN_MAX + 2 bytes), shown once;
 * its id into *token_id. 0, or -1 (reported) when no random source or the store refused. */
static int
mint_token(store *st, int64_t tid, const char *tenant_name, const char *label, const char *role,
           char *token, int64_t *token_id)
{
    char secret[AUTH_SECRET_LEN + 1];
    unsigned char hash[32];
    struct store_actor actor = {tid, "aegisctl"};
    int rc = -1;

    if (auth_secret_new(secret, hash) != 0) {
        ctl_err("no random source for the token of tenant %s", tenant_name);
        goto out;
    }
    if (store_token_create(st, tid, label, role, hash, &actor, token_id) != STORE_OK ||
        auth_token_format(*token_id, secret, token, AUTH_TOKEN_MAX) != 0) {
        ctl_err("the token of tenant %s could not be stored", tenant_name);
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(secret, sizeof(secret));
    sodium_memzero(hash, sizeof(hash));
    return rc;
}

/* Writes token to token_out (0600, with a newline) when set. 0, or -1 (reported) after revoking
 * the token (id token_id of tenant tid), which nobody would hold. */
static int
save_token(store *st, int64_t tid, int64_t token_id, const char *token_out, char *token)
{
    if (token_out == NULL)
        return 0;
    size_t tl = strlen(token);
    token[tl] = '\n';
    int w = util_write_file(token_out, token, tl + 1, 0600);
    token[tl] = '\0';
    if (w != 0) {
        struct store_actor actor = {tid, "aegisctl"};
        ctl_err("cannot write the token file %s: %s", token_out, strerror(errno));
        if (store_token_revoke(st, tid, token_id, &actor) != STORE_OK)
            ctl_err("and the token (id %lld) could not be revoked: revoke it", (long long)token_id);
        return -1;
    }
    return 0;
}

static int
ctl_tenant_create(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const char *token_out = NULL;
    const struct ctl_opt opts[] = {{"--token-out", CTL_OPT_STR, &token_out, NULL},
                                   {NULL, 0, NULL, NULL}};
    store *st = NULL;
    json_t *tenant = NULL, *o = NULL;
    char token[AUTH_TOKEN_MAX + 2]; /* + "\n" for --token-out */
    int64_t tid = 0, token_id = 0;
    int rc, ca_ok = 0;
    struct ca_made m;
    const char *name;

    memset(token, 0, sizeof(token));
    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    name = pos[0];
    if (!tenant_name_ok(name))
        return ctl_usage_error(c, "NAME: 1-64 characters of [a-zA-Z0-9._-]");
    if (token_out != NULL && token_out[0] == '\0')
        return ctl_usage_error(c, "--token-out: empty file name");
    if (ctl_config(c) != 0 || !pki_ready(c))
        return CTL_EXIT_LOCAL;
    if (token_out != NULL && !parent_writable(token_out)) {
        ctl_err("cannot write the token file %s: directory missing or not writable", token_out);
        return CTL_EXIT_LOCAL;
    }
    rc = ctl_store_open(c, 1, &st, NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = CTL_EXIT_LOCAL;

    /* 1. the tenant */
    struct store_actor op = {0, "aegisctl"};
    int r = store_tenant_create(st, name, &op, &tid);
    if (r == STORE_CONFLICT) {
        ctl_err("a tenant named '%s' already exists", name);
        goto out;
    }
    if (r != STORE_OK) {
        ctl_err("cannot create tenant '%s' (database error)", name);
        goto out;
    }

    /* 2. its first admin token, before the CA: if the CA fails, `aegisctl pki init` makes it later
     * (and `aegisctl tenant token` mints another token if this one is lost). */
    if (mint_token(st, tid, name, "initial-admin", "admin", token, &token_id) != 0) {
        ctl_err(
            "tenant %s was created (id %lld): mint its admin token with `aegisctl tenant token %s`",
            name, (long long)tid, name);
        goto out;
    }

    /* 3. its issuing CA */
    ca_ok = make_tenant_ca(c, st, tid, name, &m) == 0;

    /* 4. report */
    if (store_tenant_get(st, tid, &tenant) != STORE_OK || tenant == NULL)
        tenant = json_pack("{s:I, s:s}", "id", (json_int_t)tid, "name", name);
    if (save_token(st, tid, token_id, token_out, token) != 0)
        goto out;
    if (c->json) {
        o = json_pack("{s:O?}", "tenant", tenant);
        if (o == NULL || json_object_set_new(o, token_out ? "token_file" : "token",
                                             json_string(token_out ? token_out : token)) != 0) {
            ctl_err("out of memory");
            goto out;
        }
        ctl_print_json(o);
    } else {
        printf("tenant %s created (id %lld)\n", name, (long long)tid);
        if (token_out != NULL)
            printf("admin token written to %s\n", token_out);
        else
            printf("admin token (shown once): %s\n", token);
    }
    if (!ca_ok) {
        ctl_err("tenant %s has no issuing CA yet: run `aegisctl pki init` to create it", name);
        goto out;
    }
    rc = CTL_EXIT_OK;
out:
    ctl_json_forget(o, "token");
    json_decref(o);
    json_decref(tenant);
    sodium_memzero(token, sizeof(token));
    store_close(st);
    return rc;
}

/* The id of the tenant named name: 0 when there is none, -1 on a database error. */
static int64_t
tenant_id_by_name(store *st, const char *name)
{
    int64_t id = 0;
    int rc = store_tenant_find(st, name, &id);
    if (rc == STORE_NOTFOUND)
        return 0;
    return rc == STORE_OK ? id : -1;
}

static int
ctl_tenant_token(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const char *token_out = NULL, *role = "admin", *label = "recovery-admin";
    const struct ctl_opt opts[] = {{"--token-out", CTL_OPT_STR, &token_out, NULL},
                                   {"--role", CTL_OPT_STR, &role, NULL},
                                   {"--name", CTL_OPT_STR, &label, NULL},
                                   {NULL, 0, NULL, NULL}};
    store *st = NULL;
    json_t *o = NULL;
    char token[AUTH_TOKEN_MAX + 2]; /* + "\n" for --token-out */
    int rc;

    memset(token, 0, sizeof(token));
    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    const char *name = pos[0];
    if (!tenant_name_ok(name))
        return ctl_usage_error(c, "NAME: 1-64 characters of [a-zA-Z0-9._-]");
    if (strcmp(role, "admin") != 0 && strcmp(role, "operator") != 0 && strcmp(role, "reader") != 0)
        return ctl_usage_error(c, "--role: admin, operator or reader");
    if (label[0] == '\0' || strlen(label) > 128)
        return ctl_usage_error(c, "--name: 1-128 bytes");
    if (token_out != NULL && (token_out[0] == '\0' || !parent_writable(token_out)))
        return ctl_usage_error(c, "--token-out: a file in an existing, writable directory");
    if (ctl_config(c) != 0)
        return CTL_EXIT_LOCAL;
    rc = ctl_store_open(c, 0, &st, NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = CTL_EXIT_LOCAL;
    int64_t tid = tenant_id_by_name(st, name);
    if (tid < 0) {
        ctl_err("cannot read the tenants (database error)");
        goto out;
    }
    if (tid == 0) {
        ctl_err("no tenant named '%s'", name);
        goto out;
    }
    int64_t token_id = 0;
    if (mint_token(st, tid, name, label, role, token, &token_id) != 0 ||
        save_token(st, tid, token_id, token_out, token) != 0)
        goto out;
    if (c->json) {
        o = json_pack("{s:s, s:s, s:s, s:s}", "tenant", name, "name", label, "role", role,
                      token_out ? "token_file" : "token", token_out ? token_out : token);
        if (o == NULL) {
            ctl_err("out of memory");
            goto out;
        }
        ctl_print_json(o);
    } else if (token_out != NULL) {
        printf("%s token of tenant %s written to %s\n", role, name, token_out);
    } else {
        printf("%s token of tenant %s (shown once): %s\n", role, name, token);
    }
    rc = CTL_EXIT_OK;
out:
    ctl_json_forget(o, "token");
    json_decref(o);
    sodium_memzero(token, sizeof(token));
    store_close(st);
    return rc;
}

static int
ctl_tenant_list(struct ctl *c, int argc, char **argv)
{
    static const struct ctl_col cols[] = {{"ID", "id", 0, 0},
                                          {"NAME", "name", 0, CTL_COL_CUT},
                                          {"CREATED_AT", "created_at", 0, 0},
                                          {NULL, NULL, 0, 0}};
    store *st = NULL;
    json_t *tenants = NULL;
    int pr = ctl_parse(c, argc, argv, NULL, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    int rc = ctl_store_open(c, 0, &st, NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (store_tenant_list(st, &tenants) != STORE_OK) {
        ctl_err("cannot list tenants (database error)");
        rc = CTL_EXIT_LOCAL;
        goto out;
    }
    int printed = ctl_print_data(c, tenants, cols);
    if (printed == 0)
        ctl_print_table(c, tenants, cols);
    rc = ctl_print_exit(printed);
out:
    json_decref(tenants);
    store_close(st);
    return rc;
}

static int
ctl_migrate(struct ctl *c, int argc, char **argv)
{
    store *st = NULL;
    int applied = 0, version = 0;
    int pr = ctl_parse(c, argc, argv, NULL, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    int rc = ctl_store_open(c, 1, &st, &applied);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (store_schema_version(st, &version) != STORE_OK) {
        ctl_err("cannot read the schema version (database error)");
        rc = CTL_EXIT_LOCAL;
        goto out;
    }
    if (c->json) {
        json_t *o = json_pack("{s:s, s:i, s:i}", "database", c->cfg.database, "version", version,
                              "applied", applied);
        if (o == NULL) {
            rc = CTL_EXIT_LOCAL;
            goto out;
        }
        ctl_print_json(o);
        json_decref(o);
    } else {
        printf("database at version %d (applied %d)\n", version, applied);
    }
out:
    store_close(st);
    return rc;
}

const struct ctl_cmd cmd_local_cmds[] = {
    {"pki", "init", ctl_pki_init, 0, "[--hosts LIST]",
     "create the service root CA, the server certificate and missing tenant device roots and "
     "issuing CAs",
     "Creates <pki_dir>/root.{crt,key} and server.{crt,key} unless they exist (keys mode 0600, "
     "directory\n"
     "0700), migrates the database, then creates an issuing CA (valid 2 years) for every tenant "
     "that has\n"
     "none. Safe to run again.\n"
     "\n"
     "Options:\n"
     "  --hosts LIST   comma-separated DNS names and IP addresses for the server certificate\n"
     "                 (default \"localhost,127.0.0.1,::1\")\n",
     NULL},
    {"pki", "rotate", ctl_pki_rotate, 0, "TENANT_NAME", "create a new issuing CA for a tenant",
     "Creates a new issuing CA (valid 2 years) for the tenant and makes it the active one. Older "
     "CAs stay\n"
     "listed (and their certificates valid) until they expire.\n",
     NULL},
    {"tenant", "create", ctl_tenant_create, 0, "NAME [--token-out FILE]",
     "create a tenant, its issuing CA and its first admin token",
     "Creates the tenant NAME (1-64 characters of [a-zA-Z0-9._-]), its issuing CA and an admin "
     "token\n"
     "named \"initial-admin\". The PKI must be initialised first (aegisctl pki init).\n"
     "Prints the token once; with --json prints {\"tenant\": {...}, \"token\": \"aegis_...\"}.\n"
     "\n"
     "Options:\n"
     "  --token-out FILE   write the token to FILE (mode 0600) instead of printing it\n",
     NULL},
    {"tenant", "list", ctl_tenant_list, 0, "", "list the tenants in the database",
     "Lists every tenant (id, name, created_at) from the database; --json prints the array.\n",
     NULL},
    {"tenant", "token", ctl_tenant_token, 0,
     "NAME [--role admin|operator|reader] [--name LABEL] [--token-out FILE]",
     "mint an API token for an existing tenant (recovery)",
     "Creates an API token for the tenant NAME directly in the database, for when no admin token "
     "is\n"
     "left (lost or revoked). The token is audited as created by aegisctl. Prints it once; with\n"
     "--json prints {\"tenant\", \"name\", \"role\", \"token\"}.\n"
     "\n"
     "Options:\n"
     "  --role ROLE        admin (default), operator or reader\n"
     "  --name LABEL       the token's name (default \"recovery-admin\")\n"
     "  --token-out FILE   write the token to FILE (mode 0600) instead of printing it\n",
     NULL},
    {"migrate", NULL, ctl_migrate, 0, "", "apply pending database migrations",
     "Applies the migrations compiled into this binary and prints the schema version. A database\n"
     "newer than this binary is refused (exit 4).\n",
     NULL},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
