import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { SetContextLink } from '@apollo/client/link/context';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { relayStylePagination } from '@apollo/client/utilities';
import { OperationTypeNode } from 'graphql';
import { bearer, type Session } from './session.ts';
import { wsClient } from './ws.ts';

// Apollo Client as a front end sets it up for this API: the bearer token from
// the session on every HTTP request, subscriptions over graphql-ws, and the
// `patients` connection merged page by page by its cursor (one cached list
// per search and order).
export function apolloClient(apiUrl: string, session: Session): ApolloClient {
  const auth = new SetContextLink((context) => ({
    headers: { ...context.headers, ...bearer(session) },
  }));
  const http = new HttpLink({ uri: `${apiUrl}/graphql` });
  const ws = new GraphQLWsLink(wsClient(`${apiUrl.replace(/^http/, 'ws')}/graphql/ws`, session));
  const link = ApolloLink.split(
    ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
    ws,
    ApolloLink.from([auth, http]),
  );
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
