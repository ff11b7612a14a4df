// Where a front end keeps its access token: each client reads it per request,
// so signing in (or out) takes effect on the next operation.
export interface Session {
  token: string | null;
}

export function bearer(session: Session): Record<string, string> {
  return session.token ? { authorization: `Bearer ${session.token}` } : {};
}
