/* Migrations compiled into the binary (generated from db/schema/ by db/embed.sh). */
#ifndef AEGIS_SCHEMA_H
#define AEGIS_SCHEMA_H

struct schema_migration {
    int version;      /* the NNNN of NNNN_name.sql; strictly increasing */
    const char *name; /* file name without .sql */
    const char *sql;  /* whole file, applied in one transaction */
};

extern const struct schema_migration schema_migrations[];
extern const int schema_migration_count;

#endif
