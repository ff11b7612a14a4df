import { Client, fetchExchange, subscriptionExchange } from '@urql/core';
import { cacheExchange } from '@urql/exchange-graphcache';
import { relayPagination } from '@urql/exchange-graphcache/extras';
import { bearer, type Session } from './session.ts';
import { wsClient } from './ws.ts';

// urql with Graphcache: records are normalised by `id`; connections, edges,
// page info, sessions and events have no id of their own and live inside
// the record that holds them.
export function urqlClient(apiUrl: string, session: Session): Client {
  const ws = wsClient(`${apiUrl.replace(/^http/, 'ws')}/graphql/ws`, session);
  return new Client({
    url: `${apiUrl}/graphql`,
    fetchOptions: () => ({ headers: bearer(session) }),
    exchanges: [
      cacheExchange({
        keys: {
          AuthPayload: () => null,
          PatientConnection: () => null,
          PatientEdge: () => null,
          DoctorConnection: () => null,
          DoctorEdge: () => null,
          MappingConnection: () => null,
          MappingEdge: () => null,
          PageInfo: () => null,
          MappingEvent: () => null,
        },
        resolvers: {
          Query: {
            patients: relayPagination(),
            patient: (_parent, args) => ({ __typename: 'Patient', id: args.id as string }),
          },
        },
        updates: {
          Mutation: {
            deletePatient: (_result, args, cache) => {
              cache.invalidate({ __typename: 'Patient', id: args.id as string });
            },
          },
        },
      }),
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({
            unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink),
          }),
        }),
      }),
    ],
  });
}
