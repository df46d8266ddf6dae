-- Aegis schema, version 12: the tenants' TUF repositories (docs/update.md sections 2-3, issue 11). Every
-- version of every metadata file is kept, exactly as served: consistent snapshots serve N.targets.json and
-- N.snapshot.json by version, and a device that walks the root chain fetches every N.root.json. Rows are
-- added, never changed. repo 'image' is the manufacturer-signed image repository, 'director' the director's
-- (only its root is stored here).
CREATE TABLE tuf_meta (
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    repo       TEXT    NOT NULL CHECK (repo IN ('image', 'director')),
    role       TEXT    NOT NULL CHECK (role IN ('root', 'targets', 'snapshot', 'timestamp')),
    version    INTEGER NOT NULL CHECK (version >= 1),
    expires    INTEGER NOT NULL,
    body       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, repo, role, version)
) WITHOUT ROWID;
