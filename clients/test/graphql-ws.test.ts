import assert from 'node:assert/strict';
import { test } from 'node:test';
import { print } from 'graphql';
import { wsClient } from '../src/ws.ts';
import { MappingEventsDocument, type MappingEventsSubscription } from '../src/generated/graphql.ts';
import {
  Received,
  WS_URL,
  assignDoctor,
  createDoctor,
  createPatient,
  removeMapping,
  signUp,
  untilLive,
} from './api.ts';

type Event = MappingEventsSubscription['mappingEvents'];

// Subscribes through a graphql-ws client and collects what arrives.
function watch(token: string, patientId: string | null) {
  const client = wsClient(WS_URL, { token }, { retry: false });
  const received = new Received<Event>();
  const failures: unknown[] = [];
  const stop = client.subscribe<MappingEventsSubscription>(
    { query: print(MappingEventsDocument), variables: { patientId } },
    {
      next: (result) => (result.data ? received.push(result.data.mappingEvents) : failures.push(result.errors)),
      error: (error) => failures.push(error),
      complete: () => {},
    },
  );
  return {
    received,
    failures,
    close: async () => {
      stop();
      await client.dispose();
    },
  };
}

test('graphql-ws: ASSIGNED and REMOVED for my patient, nothing for another user’s', async () => {
  const ann = await signUp('Ws Ann');
  const bob = await signUp('Ws Bob');
  const annsPatient = await createPatient(ann.token, 'Ann’s Patient');
  const bobsPatient = await createPatient(bob.token, 'Bob’s Patient');
  const doctor = await createDoctor(ann.token, 'Dr Shared');

  const annsOne = watch(ann.token, annsPatient);
  const annsAll = watch(ann.token, null);
  const bobsAll = watch(bob.token, null);
  // Bob asks for Ann's patient by id: the subscription is accepted (an id
  // tells nothing) and stays silent.
  const bobsSpy = watch(bob.token, annsPatient);
  try {
    const probe = (token: string, patient: string) => async () => {
      const mapping = await assignDoctor(token, patient, await createDoctor(token, 'Dr Probe'));
      return (event: Event) => event.mappingId === mapping;
    };
    await untilLive(annsOne.received, probe(ann.token, annsPatient));
    await untilLive(annsAll.received, probe(ann.token, annsPatient));
    await untilLive(bobsAll.received, probe(bob.token, bobsPatient));

    // Bob's change commits before Ann's; events arrive in commit order, so
    // when Ann's arrive, Bob's would already have arrived had they leaked.
    const bobsMapping = await assignDoctor(bob.token, bobsPatient, doctor);
    const mapping = await assignDoctor(ann.token, annsPatient, doctor);
    await removeMapping(ann.token, mapping);

    for (const watcher of [annsOne, annsAll]) {
      const assigned = await watcher.received.waitFor((event) => event.mappingId === mapping && event.kind === 'ASSIGNED');
      const removed = await watcher.received.waitFor((event) => event.mappingId === mapping && event.kind === 'REMOVED');
      assert.deepEqual(
        { ...assigned, at: undefined },
        {
          __typename: 'MappingEvent',
          kind: 'ASSIGNED',
          mappingId: mapping,
          patientId: annsPatient,
          doctorId: doctor,
          at: undefined,
        },
      );
      assert.equal(removed?.doctorId, doctor);
      assert.match(assigned!.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      assert.ok(watcher.received.items.every((event) => event.patientId === annsPatient), 'Ann saw another user’s event');
      // The payload is ids only: no patient data travels.
      // The generated documents ask for __typename, as the manifest does.
      assert.deepEqual(Object.keys(assigned!).sort(), ['__typename', 'at', 'doctorId', 'kind', 'mappingId', 'patientId']);
      assert.deepEqual(watcher.failures, []);
    }

    // Bob's own assignment reached him; nothing of Ann's did, by either road.
    assert.ok(await bobsAll.received.waitFor((event) => event.mappingId === bobsMapping));
    await bobsAll.received.waitFor(() => false, 300);
    assert.ok(bobsAll.received.items.every((event) => event.patientId === bobsPatient));
    assert.deepEqual(bobsSpy.received.items, []);
    assert.deepEqual(bobsSpy.failures, []);
  } finally {
    await Promise.all([annsOne, annsAll, bobsAll, bobsSpy].map((watcher) => watcher.close()));
  }
});

test('graphql-ws: no token or a bad one closes the socket with 4401 before any event', async () => {
  for (const token of [null, 'not-a-token', `${(await signUp('Ws Tampered')).token}x`]) {
    const watcher = watch(token as string, null);
    const closed = await new Promise<unknown>((resolve) => {
      const timer = setInterval(() => {
        if (watcher.failures.length) {
          clearInterval(timer);
          resolve(watcher.failures[0]);
        }
      }, 10);
    });
    assert.equal((closed as { code?: number }).code, 4401, `token ${token}`);
    assert.deepEqual(watcher.received.items, []);
    await watcher.close();
  }
});
