-- Tracker schema (PostgreSQL). Applied at start-up by `sqlx::migrate!()`; also usable
-- with `psql -f migrations/0001_tracker.sql`.
CREATE TABLE organization (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE project (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id TEXT NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    settings JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name)
);
CREATE INDEX project_organization ON project(organization_id);

CREATE TYPE task_status AS ENUM ('todo', 'in_progress', 'done');

CREATE TABLE task (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id UUID NOT NULL REFERENCES project(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    status task_status NOT NULL DEFAULT 'todo',
    tags TEXT[] NOT NULL DEFAULT '{}',
    due DATE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (project_id, title)
);
CREATE INDEX task_project ON task(project_id);

CREATE TABLE comment (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id UUID NOT NULL REFERENCES task(id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX comment_task ON comment(task_id);

-- The demo organizations (the bearer tokens of `auth.rs` map to them).
INSERT INTO organization (id, name) VALUES ('acme', 'Acme Corp'), ('globex', 'Globex');
