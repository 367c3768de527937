-- TeamHub schema (SQLite).
CREATE TABLE organization (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE agent (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organization(id),
    name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'idle',
    created_at BIGINT NOT NULL
);
CREATE INDEX agent_organization ON agent(organization_id);
CREATE TABLE message (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organization(id),
    from_agent_id TEXT NOT NULL REFERENCES agent(id) ON DELETE CASCADE,
    to_agent_id TEXT NOT NULL REFERENCES agent(id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX message_from ON message(from_agent_id);
CREATE INDEX message_to ON message(to_agent_id);
CREATE TABLE memory (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organization(id),
    agent_id TEXT NOT NULL REFERENCES agent(id) ON DELETE CASCADE,
    content TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX memory_agent ON memory(agent_id);
CREATE TABLE tool (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organization(id),
    name TEXT NOT NULL
);
CREATE INDEX tool_organization ON tool(organization_id);
