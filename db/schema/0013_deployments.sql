-- Aegis schema, version 13: deployments and staged rollouts (docs/update.md section 7, docs/api.md
-- "Deployments", issue 11). A deployment offers a set of images to one device group, wave by wave;
-- devices report each update attempt; the director's answers carry a per-tenant generation.
CREATE TABLE deployments (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id             INTEGER NOT NULL REFERENCES tenants (id),
    group_id              INTEGER NOT NULL,
    name                  TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    waves                 TEXT    NOT NULL CHECK (json_valid(waves)), -- cumulative percents, e.g. [1,10,50,100]
    soak_seconds          INTEGER NOT NULL CHECK (soak_seconds BETWEEN 0 AND 31536000),
    failure_threshold_pct INTEGER NOT NULL CHECK (failure_threshold_pct BETWEEN 1 AND 100),
    min_attempts          INTEGER NOT NULL CHECK (min_attempts BETWEEN 1 AND 1000000),
    state                 TEXT    NOT NULL
                                  CHECK (state IN ('running', 'paused', 'halted', 'aborted', 'completed')),
    current_wave          INTEGER NOT NULL CHECK (current_wave >= 1), -- 1-based
    wave_started_at       INTEGER NOT NULL,
    checks_since          INTEGER NOT NULL, -- halts count attempts finished and flags raised from then
    reason                TEXT,             -- of the last transition
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, group_id) REFERENCES device_groups (tenant_id, id)
);
CREATE INDEX deployments_by_tenant ON deployments (tenant_id, id);
CREATE INDEX deployments_by_group ON deployments (group_id, id);
-- At most one deployment per group that is not over.
CREATE UNIQUE INDEX deployments_one_active ON deployments (group_id)
    WHERE state IN ('running', 'paused', 'halted');

CREATE TABLE deployment_images (
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    tenant_id     INTEGER NOT NULL,
    sha256        TEXT    NOT NULL,
    PRIMARY KEY (deployment_id, sha256)
) WITHOUT ROWID; -- no foreign key to images: an image of a finished deployment may be deleted
CREATE INDEX deployment_images_by_image ON deployment_images (tenant_id, sha256);

-- One row per (device, attempt_id): a device's reports about one try to install one image.
CREATE TABLE update_attempts (
    device_id     TEXT    NOT NULL REFERENCES devices (id),
    attempt_id    TEXT    NOT NULL CHECK (length(attempt_id) BETWEEN 1 AND 64),
    tenant_id     INTEGER NOT NULL REFERENCES tenants (id),
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    image         TEXT    NOT NULL,
    wave          INTEGER NOT NULL CHECK (wave >= 1),
    state         TEXT    NOT NULL CHECK (state IN ('downloading', 'installed', 'booted', 'committed',
                                                    'rolled_back', 'failed')),
    reason        TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    finished_at   INTEGER, -- set with a terminal state
    PRIMARY KEY (device_id, attempt_id)
) WITHOUT ROWID;
CREATE INDEX update_attempts_by_deployment ON update_attempts (deployment_id, wave, finished_at);

-- The version of a tenant's director answers: bumped by every change of what any device should
-- install, and before the answers expire. No row: generation 1.
CREATE TABLE director_generations (
    tenant_id  INTEGER NOT NULL PRIMARY KEY REFERENCES tenants (id),
    generation INTEGER NOT NULL CHECK (generation >= 1),
    updated_at INTEGER NOT NULL
);
