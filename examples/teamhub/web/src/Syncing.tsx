/** The quiet "Syncing…" mark shown while a query's data is stale (cached, or invalidated and refetching). */
export function Syncing({ show, testid }: { show: boolean; testid: string }) {
  return show ? (
    <span className="syncing" data-testid={testid} role="status">
      Syncing…
    </span>
  ) : null;
}
