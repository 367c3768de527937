// Demo sign-in: the page stores the chosen demo token in the `reactive_token` cookie, which the
// server's authorizer reads on every request (EventSource cannot send an Authorization header,
// but it does send cookies). The token never goes into the client's requests by hand.

/** The demo organizations and their bearer tokens (the server prints them at start-up). */
export const DEMO_ORGS = [
  { id: 'org-1', name: 'Acme Robotics', token: 'token-org-1' },
  { id: 'org-2', name: 'Globex Research', token: 'token-org-2' },
] as const;

export type DemoOrg = (typeof DEMO_ORGS)[number];

/** The cookie the server's `DemoAuth` reads. */
export const TOKEN_COOKIE = 'reactive_token';

/** The organization of the signed-in demo token, if any. */
export function currentOrg(): DemoOrg | undefined {
  const token = document.cookie
    .split(';')
    .map((kv) => kv.trim().split('='))
    .find(([k]) => k === TOKEN_COOKIE)?.[1];
  return DEMO_ORGS.find((o) => o.token === token);
}

/** Signs in to a demo organization (sets the cookie for the whole site). */
export function signIn(org: DemoOrg): void {
  document.cookie = `${TOKEN_COOKIE}=${org.token}; path=/; SameSite=Strict; max-age=${60 * 60 * 24 * 30}`;
}

/** Signs out (drops the cookie). */
export function signOut(): void {
  document.cookie = `${TOKEN_COOKIE}=; path=/; SameSite=Strict; max-age=0`;
}
