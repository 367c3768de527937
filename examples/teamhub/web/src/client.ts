// The page's one reactive client: the generated procedure map and output-types version (passed by
// the generated `createClient`), the API under `/api`, and cookie authentication (the demo sign-in
// sets the cookie). The tenant keys the browser cache, so switching organization never shows the
// other organization's data; the version drops data cached under another output shape.
import { createClient } from './generated/procedures';
import { currentOrg } from './session';

export const client = createClient({
  baseUrl: '/api',
  tenant: currentOrg()?.id ?? 'signed-out',
  credentials: 'same-origin',
  // Demo-friendly real-time tuning: poll every 2 s when SSE is unavailable, try SSE again after 10 s.
  pollInterval: 2000,
  sseRetryDelay: 10000,
});
