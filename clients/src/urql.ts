import { Client, fetchExchange, subscriptionExchange, type Exchange } from '@urql/core';
import { cacheExchange, type Cache } from '@urql/exchange-graphcache';
import { relayPagination } from '@urql/exchange-graphcache/extras';
import { persistedExchange } from '@urql/exchange-persisted';
import { documentHash } from './persisted.ts';
import { bearer, type Session } from './session.ts';
import { wsClient } from './ws.ts';

// urql with Graphcache: records are normalised by `id`; connections, edges,
// page info, sessions and events have no id of their own and live inside
// the record that holds them. With `trusted`, every operation goes as the
// hash graphql-codegen gave its document, never as text.
export function urqlClient(apiUrl: string, session: Session, options: { trusted?: boolean } = {}): Client {
  const ws = wsClient(`${apiUrl.replace(/^http/, 'ws')}/graphql/ws`, session);
  const persisted: Exchange[] = options.trusted
    ? [
        persistedExchange({
          enforcePersistedQueries: true,
          enableForMutation: true,
          enableForSubscriptions: true,
          generateHash: async (_query, document) => documentHash(document),
        }),
      ]
    : [];
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
            // What the server last said about patient(id), else the
            // patient as a list brought it in.
            patient: (_parent, args, cache, info) => {
              const known = cache.resolve(info.parentKey, info.fieldName, args);
              return known !== undefined ? known : { __typename: 'Patient', id: args.id as string };
            },
          },
        },
        // A patient created or deleted changes every cached list of
        // patients: drop them, and the next read asks the server.
        updates: {
          Mutation: {
            createPatient: (_result, _args, cache) => forgetPatientLists(cache),
            deletePatient: (_result, args, cache) => {
              cache.invalidate({ __typename: 'Patient', id: args.id as string });
              forgetPatientLists(cache);
            },
          },
        },
      }),
      ...persisted,
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

function forgetPatientLists(cache: Cache): void {
  for (const field of cache.inspectFields('Query')) {
    if (field.fieldName === 'patients') cache.invalidate('Query', field.fieldName, field.arguments);
  }
}
