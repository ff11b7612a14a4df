import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { SetContextLink } from '@apollo/client/link/context';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { relayStylePagination } from '@apollo/client/utilities';
import { OperationTypeNode } from 'graphql';
import { documentHash } from './persisted.ts';
import { bearer, type Session } from './session.ts';
import { wsClient } from './ws.ts';

export interface ApolloOptions {
  // Automatic persisted queries: a query's SHA-256 instead of its text once
  // the server knows it, sent by GET (mutations stay POST).
  persistedQueries?: boolean;
  // Trusted documents: every operation, subscriptions included, sent as the
  // hash graphql-codegen gave it and never as text.
  trusted?: boolean;
  // The fetch the HTTP link uses (a test's, to watch the wire).
  fetch?: typeof fetch;
}

// The SHA-256 of a document's text, in hex, with the Web Crypto API that
// browsers and Node.js both have.
async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

// Apollo Client as a front end sets it up for this API: the bearer token from
// the session on every HTTP request, subscriptions over graphql-ws, and the
// `patients` connection merged page by page by its cursor (one cached list
// per search and order).
export function apolloClient(apiUrl: string, session: Session, options: ApolloOptions = {}): ApolloClient {
  const auth = new SetContextLink((context) => ({
    headers: { ...context.headers, ...bearer(session) },
  }));
  const http = new HttpLink({ uri: `${apiUrl}/graphql`, fetch: options.fetch });
  const persisted = options.persistedQueries
    ? [new PersistedQueryLink({ sha256, useGETForHashedQueries: true })]
    : [];
  const ws = new GraphQLWsLink(wsClient(`${apiUrl.replace(/^http/, 'ws')}/graphql/ws`, session));
  const split = ApolloLink.split(
    ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
    ws,
    ApolloLink.from([auth, ...persisted, http]),
  );
  const link = options.trusted
    ? ApolloLink.from([
        new PersistedQueryLink({
          generateHash: documentHash,
          useGETForHashedQueries: true,
          // The server knows every document: never fall back to the text.
          retry: () => false,
          disable: () => false,
        }),
        split,
      ])
    : split;
  return new ApolloClient({
    link,
    cache: new InMemoryCache({
      typePolicies: {
        Query: {
          fields: {
            patients: relayStylePagination(['search', 'orderBy']),
            patient: {
              // A patient already in the cache answers patient(id) at once.
              read(existing, { args, toReference }) {
                return existing ?? toReference({ __typename: 'Patient', id: args?.id });
              },
            },
          },
        },
      },
    }),
  });
}
