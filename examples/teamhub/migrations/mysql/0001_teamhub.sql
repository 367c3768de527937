-- TeamHub schema (MySQL / MariaDB).
CREATE TABLE organization (
    id VARCHAR(64) PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE agent (
    id VARCHAR(64) PRIMARY KEY,
    organization_id VARCHAR(64) NOT NULL REFERENCES organization(id),
    name TEXT NOT NULL,
    status VARCHAR(32) NOT NULL DEFAULT 'idle',
    created_at BIGINT NOT NULL
);
CREATE INDEX agent_organization ON agent(organization_id);
CREATE TABLE message (
    id VARCHAR(64) PRIMARY KEY,
    organization_id VARCHAR(64) NOT NULL REFERENCES organization(id),
    from_agent_id VARCHAR(64) NOT NULL REFERENCES agent(id) ON DELETE CASCADE,
    to_agent_id VARCHAR(64) NOT NULL REFERENCES agent(id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX message_from ON message(from_agent_id);
CREATE INDEX message_to ON message(to_agent_id);
CREATE TABLE memory (
    id VARCHAR(64) PRIMARY KEY,
    organization_id VARCHAR(64) NOT NULL REFERENCES organization(id),
    agent_id VARCHAR(64) NOT NULL REFERENCES agent(id) ON DELETE CASCADE,
    content TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX memory_agent ON memory(agent_id);
CREATE TABLE tool (
    id VARCHAR(64) PRIMARY KEY,
    organization_id VARCHAR(64) NOT NULL REFERENCES organization(id),
    name TEXT NOT NULL
);
CREATE INDEX tool_organization ON tool(organization_id);
