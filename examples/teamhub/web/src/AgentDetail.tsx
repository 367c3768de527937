// One agent: stats, rename / status / delete, messages and memory.
import { useState } from 'react';
import { useReactive, useReactiveMutation } from './generated/procedures';
import type { Agent, Memory, Message, UpdateAgent } from './generated/types';
import { useReportError } from './errors';
import { dateOf, nowStamp, plusOne } from './int';
import { Syncing } from './Syncing';

const STATUSES = ['idle', 'active', 'paused'];
let pendingSeq = 0;

/** `agent` with the changes of an update applied (fields left out keep their value). */
function applyUpdate(agent: Agent, input: UpdateAgent): Agent {
  if (agent.id !== input.id) return agent;
  return { ...agent, name: input.data.name?.trim() ?? agent.name, status: input.data.status ?? agent.status };
}

export function AgentDetail({
  organizationId,
  agentId,
  onClose,
}: {
  organizationId: string;
  agentId: string;
  onClose: () => void;
}) {
  const report = useReportError();
  const ids = { organizationId, agentId };
  const stats = useReactive('agents.getWithStats', ids);
  const messages = useReactive('messages.getAll', ids);
  const memory = useReactive('memory.recent', ids);
  const agents = useReactive('agents.findMany', { organizationId });

  const update = useReactiveMutation('agents.update', {
    optimistic: (input, cache) => {
      cache.update('agents.findMany', { organizationId: input.organizationId }, (old) =>
        old?.map((a) => applyUpdate(a, input)),
      );
      cache.update('agents.getWithStats', { organizationId: input.organizationId, agentId: input.id }, (old) =>
        old?.agent ? { ...old, agent: applyUpdate(old.agent, input) } : old,
      );
    },
  });
  const remove = useReactiveMutation('agents.delete', {
    optimistic: (input, cache) =>
      cache.update('agents.findMany', { organizationId: input.organizationId }, (old) =>
        old?.filter((a) => a.id !== input.id),
      ),
  });
  const send = useReactiveMutation('messages.send', {
    optimistic: (input, cache) => {
      const key = { organizationId: input.organizationId, agentId: input.fromAgentId };
      cache.update('messages.getAll', key, (old) => [
        ...(old ?? []),
        {
          id: `pending-${++pendingSeq}`,
          fromAgentId: input.fromAgentId,
          toAgentId: input.toAgentId,
          body: input.body,
          createdAt: nowStamp<Message['createdAt']>(),
        },
      ]);
      cache.update('agents.getWithStats', key, (old) => old && { ...old, messageCount: plusOne(old.messageCount) });
    },
  });
  const remember = useReactiveMutation('memory.add', {
    optimistic: (input, cache) => {
      const key = { organizationId: input.organizationId, agentId: input.agentId };
      cache.update('memory.recent', key, (old) => [
        {
          id: `pending-${++pendingSeq}`,
          agentId: input.agentId,
          content: input.content,
          createdAt: nowStamp<Memory['createdAt']>(),
        },
        ...(old ?? []),
      ]);
      cache.update('agents.getWithStats', key, (old) => old && { ...old, memoryCount: plusOne(old.memoryCount) });
    },
  });

  const agent = stats.data?.agent;
  const [draft, setDraft] = useState<string | undefined>(undefined);
  const [body, setBody] = useState('');
  const [to, setTo] = useState('');
  const [note, setNote] = useState('');
  const others = (agents.data ?? []).filter((a) => a.id !== agentId && !a.id.startsWith('pending-'));
  const nameOf = (id: string) => (agents.data ?? []).find((a) => a.id === id)?.name ?? id;
  const recipient = others.some((a) => a.id === to) ? to : others[0]?.id;

  if (stats.data && !agent) {
    return (
      <section className="panel detail" data-testid="agent-detail" data-agent-id={agentId}>
        <p className="muted" data-testid="agent-missing">
          This agent no longer exists.
        </p>
        <button type="button" className="link" onClick={onClose}>
          Back to the list
        </button>
      </section>
    );
  }

  return (
    <section className="panel detail" data-testid="agent-detail" data-agent-id={agentId}>
      <div className="panel-head">
        <h2 data-testid="detail-name">{agent?.name ?? '…'}</h2>
        {agent && (
          <span className={`status ${agent.status}`} data-testid="detail-status">
            {agent.status}
          </span>
        )}
        <Syncing show={stats.isStale || messages.isStale || memory.isStale} testid="detail-syncing" />
        <span className="spacer" />
        <button type="button" className="link" onClick={onClose}>
          Close
        </button>
      </div>
      {stats.error && !stats.data && <p className="error-text">{stats.error.message}</p>}

      <div className="stats">
        <div className="stat">
          <span className="stat-value" data-testid="stat-messages">
            {stats.data?.messageCount ?? '–'}
          </span>
          <span className="muted">messages</span>
        </div>
        <div className="stat">
          <span className="stat-value" data-testid="stat-memories">
            {stats.data?.memoryCount ?? '–'}
          </span>
          <span className="muted">memories</span>
        </div>
        <div className="stat">
          <span className="stat-value small">{agent ? dateOf(agent.createdAt) : '–'}</span>
          <span className="muted">created</span>
        </div>
      </div>

      {agent && (
        <div className="actions">
          <form
            className="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              const name = draft ?? agent.name;
              if (name === '' || name === agent.name) return;
              update.mutateAsync({ organizationId, id: agentId, data: { name } }).catch(report);
              setDraft(undefined);
            }}
          >
            <input
              data-testid="rename-input"
              aria-label="Agent name"
              value={draft ?? agent.name}
              onChange={(e) => setDraft(e.target.value)}
            />
            <button type="submit" data-testid="rename-submit">
              Rename
            </button>
          </form>
          <select
            data-testid="status-select"
            aria-label="Status"
            value={agent.status}
            onChange={(e) =>
              update.mutateAsync({ organizationId, id: agentId, data: { status: e.target.value } }).catch(report)
            }
          >
            {[...new Set([...STATUSES, agent.status])].map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
          <button
            type="button"
            className="danger"
            data-testid="delete-agent"
            onClick={() => {
              remove.mutateAsync({ organizationId, id: agentId }).then(onClose, report);
            }}
          >
            Delete
          </button>
        </div>
      )}

      <div className="columns">
        <div className="column">
          <div className="panel-head">
            <h3>Messages</h3>
            <Syncing show={messages.isStale} testid="messages-syncing" />
          </div>
          <ul className="feed" data-testid="message-list">
            {(messages.data ?? []).map((m) => (
              <li key={m.id} className={m.id.startsWith('pending-') ? 'pending' : ''} data-testid="message">
                <span className="muted small">
                  {nameOf(m.fromAgentId)} → {nameOf(m.toAgentId)}
                </span>
                <span>{m.body}</span>
              </li>
            ))}
            {messages.data?.length === 0 && <li className="muted">No messages yet.</li>}
          </ul>
          {recipient && (
            <form
              className="inline-form"
              onSubmit={(e) => {
                e.preventDefault();
                if (!body.trim()) return;
                send
                  .mutateAsync({ organizationId, fromAgentId: agentId, toAgentId: recipient, body })
                  .catch(report);
                setBody('');
              }}
            >
              <select data-testid="message-to" aria-label="To" value={recipient} onChange={(e) => setTo(e.target.value)}>
                {others.map((a) => (
                  <option key={a.id} value={a.id}>
                    to {a.name}
                  </option>
                ))}
              </select>
              <input
                data-testid="message-body"
                placeholder="Write a message"
                value={body}
                onChange={(e) => setBody(e.target.value)}
              />
              <button type="submit" data-testid="message-send">
                Send
              </button>
            </form>
          )}
        </div>
        <div className="column">
          <div className="panel-head">
            <h3>Memory</h3>
            <Syncing show={memory.isStale} testid="memory-syncing" />
          </div>
          <ul className="feed" data-testid="memory-list">
            {(memory.data ?? []).map((m) => (
              <li key={m.id} className={m.id.startsWith('pending-') ? 'pending' : ''} data-testid="memory">
                {m.content}
              </li>
            ))}
            {memory.data?.length === 0 && <li className="muted">Nothing remembered yet.</li>}
          </ul>
          <form
            className="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              if (!note.trim()) return;
              remember.mutateAsync({ organizationId, agentId, content: note }).catch(report);
              setNote('');
            }}
          >
            <input
              data-testid="memory-content"
              placeholder="Remember something"
              value={note}
              onChange={(e) => setNote(e.target.value)}
            />
            <button type="submit" data-testid="memory-add">
              Add
            </button>
          </form>
        </div>
      </div>
    </section>
  );
}
