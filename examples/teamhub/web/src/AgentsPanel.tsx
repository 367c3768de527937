// The agent list of an organization, with create, and the organization's tools.
import { useState } from 'react';
import { useReactive, useReactiveMutation, useReactivePriorities } from './generated/procedures';
import type { Agent } from './generated/types';
import { useReportError } from './errors';
import { nowStamp } from './int';
import { Syncing } from './Syncing';

let pendingSeq = 0;

export function AgentsPanel({
  organizationId,
  selected,
  onSelect,
}: {
  organizationId: string;
  selected: string | undefined;
  onSelect: (id: string) => void;
}) {
  const report = useReportError();
  const agents = useReactive('agents.findMany', { organizationId });
  const tools = useReactive('tools.available', { organizationId });
  // Page hints: the detail of the first agents is likely next; revalidated (or prefetched) after 1 s.
  useReactivePriorities(
    (agents.data ?? [])
      .filter((a) => !a.id.startsWith('pending-'))
      .slice(0, 5)
      .map((a) => ['agents.getWithStats', { organizationId, agentId: a.id }] as const),
  );
  const create = useReactiveMutation('agents.create', {
    optimistic: (input, cache) =>
      cache.update('agents.findMany', { organizationId: input.organizationId }, (old) => [
        ...(old ?? []),
        {
          id: `pending-${++pendingSeq}`,
          organizationId: input.organizationId,
          name: input.name.trim(),
          status: 'idle',
          createdAt: nowStamp<Agent['createdAt']>(),
        },
      ]),
  });
  const [name, setName] = useState('');

  return (
    <section className="panel agents" data-testid="agents-panel">
      <div className="panel-head">
        <h2>Agents</h2>
        <Syncing show={agents.isStale} testid="agents-syncing" />
        <span className="count muted" data-testid="agent-count">
          {agents.data ? agents.data.length : ''}
        </span>
      </div>
      {agents.error && !agents.data && (
        <p className="error-text" data-testid="agents-error">
          {agents.error.message}
        </p>
      )}
      {agents.isLoading && <p className="muted">Loading…</p>}
      <ul className="agent-list" data-testid="agent-list">
        {(agents.data ?? []).map((a) => (
          <li key={a.id}>
            <button
              type="button"
              className={`agent-item${a.id === selected ? ' selected' : ''}${a.id.startsWith('pending-') ? ' pending' : ''}`}
              data-testid="agent-item"
              data-agent-id={a.id}
              disabled={a.id.startsWith('pending-')}
              onClick={() => onSelect(a.id)}
            >
              <span className="avatar">{a.name.slice(0, 1).toUpperCase()}</span>
              <span className="agent-name" data-testid="agent-name">
                {a.name}
              </span>
              <span className={`status ${a.status}`} data-testid="agent-status">
                {a.status}
              </span>
            </button>
          </li>
        ))}
      </ul>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (!name.trim()) return;
          create.mutateAsync({ organizationId, name }).then((a) => onSelect(a.id), report);
          setName('');
        }}
      >
        <input
          data-testid="new-agent-name"
          placeholder="New agent name"
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
        <button type="submit" data-testid="create-agent">
          Create
        </button>
      </form>

      <div className="panel-head tools-head">
        <h3>Tools</h3>
        <Syncing show={tools.isStale} testid="tools-syncing" />
      </div>
      <ul className="chips" data-testid="tool-list">
        {(tools.data ?? []).map((t) => (
          <li key={t.id} className="chip mono" data-testid="tool">
            {t.name}
          </li>
        ))}
      </ul>
    </section>
  );
}
