-- Aegis schema, version 11: update images (docs/api.md "Images", issue 11). An image is its bytes,
-- named by their SHA-256 and stored once per tenant under <data_dir>/images/<tenant>/<sha256>, with
-- what the manufacturer says it is. Immutable: a row is added or deleted, never changed.
CREATE TABLE images (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    sha256     TEXT    NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    size       INTEGER NOT NULL CHECK (size >= 0),
    product_id INTEGER NOT NULL,
    component  TEXT    NOT NULL CHECK (length(component) BETWEEN 1 AND 64),
    kind       TEXT    NOT NULL CHECK (kind IN ('os', 'app')),
    version    TEXT    NOT NULL CHECK (length(version) BETWEEN 1 AND 32),
    svn        INTEGER NOT NULL CHECK (svn BETWEEN 0 AND 4294967295),
    hardware   TEXT    NOT NULL CHECK (length(hardware) BETWEEN 1 AND 64),
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, sha256),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);
CREATE INDEX images_by_product ON images (product_id);
