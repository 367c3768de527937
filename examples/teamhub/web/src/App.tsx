// TeamHub: organizations, agents, messages and memory, kept live by `reactive`.
// Every read is a `useReactive` hook and every write a `useReactiveMutation` (with an optimistic
// update): there is no hand-written fetch and no manual invalidation anywhere in the page.
import { useCallback, useEffect, useState, useSyncExternalStore } from 'react';
import { client } from './client';
import { AgentDetail } from './AgentDetail';
import { AgentsPanel } from './AgentsPanel';
import { ErrorToasts } from './errors';
import { useReactiveClient } from './generated/procedures';
import { DEMO_ORGS, currentOrg, signIn, signOut, type DemoOrg } from './session';

/** The selected agent lives in the URL hash (`#agent=<id>`), so reloads and links keep it. */
function useSelectedAgent(): [string | undefined, (id: string | undefined) => void] {
  const read = () => new URLSearchParams(location.hash.slice(1)).get('agent') ?? undefined;
  const [selected, setSelected] = useState(read);
  useEffect(() => {
    const onHash = () => setSelected(read());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const select = useCallback((id: string | undefined) => {
    history.replaceState(null, '', id ? `#agent=${encodeURIComponent(id)}` : location.pathname + location.search);
    setSelected(id);
  }, []);
  return [selected, select];
}

export function App() {
  const [org, setOrg] = useState<DemoOrg | undefined>(currentOrg);
  const switchTo = (next: DemoOrg) => {
    signIn(next);
    client.setTenant(next.id);
    setOrg(next);
  };
  if (!org) return <SignIn onSignIn={switchTo} />;
  return (
    <ErrorToasts>
      <Shell
        key={org.id}
        org={org}
        onSwitch={switchTo}
        onSignOut={() => {
          signOut();
          client.setTenant('signed-out');
          setOrg(undefined);
        }}
      />
    </ErrorToasts>
  );
}

function SignIn({ onSignIn }: { onSignIn: (org: DemoOrg) => void }) {
  return (
    <div className="signin" data-testid="signin">
      <div className="signin-card">
        <Logo />
        <h1>Sign in to TeamHub</h1>
        <p className="muted">Demo mode: pick an organization. Each one signs in with its demo token.</p>
        {DEMO_ORGS.map((o) => (
          <button key={o.id} type="button" className="signin-org" data-testid={`signin-${o.id}`} onClick={() => onSignIn(o)}>
            <span className="org-avatar">{o.name[0]}</span>
            <span>
              <strong>{o.name}</strong>
              <span className="muted mono">{o.token}</span>
            </span>
          </button>
        ))}
      </div>
    </div>
  );
}

function Logo() {
  return (
    <span className="logo">
      <span className="logo-mark">⟳</span> TeamHub
    </span>
  );
}

function Shell({ org, onSwitch, onSignOut }: { org: DemoOrg; onSwitch: (o: DemoOrg) => void; onSignOut: () => void }) {
  const [selected, select] = useSelectedAgent();
  return (
    <div className="app" data-testid="app" data-org={org.id}>
      <header className="topbar">
        <Logo />
        <label className="org-switcher">
          <span className="muted">Organization</span>
          <select
            data-testid="org-switcher"
            value={org.id}
            onChange={(e) => {
              const next = DEMO_ORGS.find((o) => o.id === e.target.value);
              if (next) {
                select(undefined);
                onSwitch(next);
              }
            }}
          >
            {DEMO_ORGS.map((o) => (
              <option key={o.id} value={o.id}>
                {o.name}
              </option>
            ))}
          </select>
        </label>
        <span className="spacer" />
        <ConnectionIndicator />
        <button type="button" className="link" data-testid="signout" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <main className="layout">
        <AgentsPanel organizationId={org.id} selected={selected} onSelect={select} />
        {selected ? (
          <AgentDetail key={selected} organizationId={org.id} agentId={selected} onClose={() => select(undefined)} />
        ) : (
          <section className="panel detail empty" data-testid="no-selection">
            <p className="muted">Select an agent to see its stats, messages and memory.</p>
          </section>
        )}
      </main>
    </div>
  );
}

const LABELS = { live: 'Live', polling: 'Polling', connecting: 'Connecting', offline: 'Offline' } as const;

/** Live (SSE), polling (fallback), connecting, or offline. */
function ConnectionIndicator() {
  const rc = useReactiveClient();
  const mode = useSyncExternalStore(
    (cb) => {
      const off = rc.onRealtimeStatus(cb);
      return () => void off();
    },
    () => rc.realtimeMode,
  );
  const online = useSyncExternalStore(
    (cb) => {
      addEventListener('online', cb);
      addEventListener('offline', cb);
      return () => {
        removeEventListener('online', cb);
        removeEventListener('offline', cb);
      };
    },
    () => navigator.onLine,
  );
  const state: keyof typeof LABELS = !online
    ? 'offline'
    : mode === 'sse'
      ? 'live'
      : mode === 'poll'
        ? 'polling'
        : mode === 'connecting'
          ? 'connecting'
          : 'offline';
  return (
    <span className={`connection ${state}`} data-testid="connection" data-state={state} title={`Real time: ${mode}`}>
      <span className="dot" />
      {LABELS[state]}
    </span>
  );
}
