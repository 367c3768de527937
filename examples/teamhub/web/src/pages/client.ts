// The client of the Vue and TanStack pages: the framework-free core with the generated procedure
// map, so these pages load no React. Same API, cookie authentication and tenant as the React page.
import { createReactiveClient } from '@reactive/client';
import { procedures, version, type Procedures } from '../generated/procedures';
import { currentOrg } from '../session';

export const org = currentOrg()?.id ?? 'org-1';

export const client = createReactiveClient<Procedures>({
  procedures,
  version,
  baseUrl: '/api',
  tenant: org,
  credentials: 'same-origin',
});
