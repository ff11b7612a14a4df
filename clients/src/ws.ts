import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { Session } from './session.ts';

// A graphql-ws client for GET /graphql/ws. The token travels in the
// connection_init payload, as browsers cannot set headers on a WebSocket.
export function wsClient(wsUrl: string, session: Session, options: { retry?: boolean } = {}): Client {
  return createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    lazy: true,
    retryAttempts: options.retry === false ? 0 : 5,
    connectionParams: () => (session.token ? { Authorization: `Bearer ${session.token}` } : {}),
  });
}
