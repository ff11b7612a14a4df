import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pipe, subscribe } from 'wonka';
import type { Session } from '../src/session.ts';
import { TRUSTED } from '../src/persisted.ts';
import { urqlClient } from '../src/urql.ts';
import {
  AssignDoctorDocument,
  CreatePatientDocument,
  DeletePatientDocument,
  LoginDocument,
  MappingEventsDocument,
  MeDocument,
  PatientDocument,
  PatientSummaryDocument,
  PatientsDocument,
  RegisterDocument,
  UpdateDoctorDocument,
  UpdatePatientDocument,
  type MappingEventsSubscription,
} from '../src/generated/graphql.ts';
import { API_URL, Received, createDoctor, newAccount, signUp, untilLive } from './api.ts';

test('urql with Graphcache signs in, pages, normalises by id, updates and deletes', async () => {
  const session: Session = { token: null };
  const client = urqlClient(API_URL, session, { trusted: TRUSTED });
  const account = newAccount('Urql Una');

  const anonymous = await client.query(MeDocument, {}, { requestPolicy: 'network-only' }).toPromise();
  assert.equal(anonymous.error?.graphQLErrors[0]?.extensions.code, 'UNAUTHENTICATED');

  const registered = await client.mutation(RegisterDocument, { input: account }).toPromise();
  assert.equal(registered.error, undefined);
  assert.equal(registered.data?.register.user.email, account.email);
  const login = await client
    .mutation(LoginDocument, { input: { email: account.email, password: account.password } })
    .toPromise();
  assert.ok(login.data);
  session.token = login.data.login.accessToken;

  const me = await client.query(MeDocument, {}, { requestPolicy: 'network-only' }).toPromise();
  assert.equal(me.data?.me.email, account.email);

  const created: string[] = [];
  for (let n = 1; n <= 5; n++) {
    const result = await client.mutation(CreatePatientDocument, { input: { name: `Urql Patient ${n}` } }).toPromise();
    assert.equal(result.error, undefined);
    created.push(result.data!.createPatient.id);
  }

  // relayPagination merges each page into the list of the first page's
  // arguments: the last answer holds every patient, newest first.
  let page = await client.query(PatientsDocument, { first: 2 }, { requestPolicy: 'network-only' }).toPromise();
  assert.equal(page.data?.patients.edges.length, 2);
  let pages = 1;
  while (page.data?.patients.pageInfo.hasNextPage && pages < 10) {
    page = await client
      .query(PatientsDocument, { first: 2, after: page.data.patients.pageInfo.endCursor })
      .toPromise();
    assert.equal(page.error, undefined);
    pages += 1;
  }
  assert.equal(pages, 3);
  assert.deepEqual(
    page.data?.patients.edges.map((edge) => edge.node.id),
    [...created].reverse(),
  );
  assert.equal(page.data?.patients.totalCount, 5);

  // patient(id) of a listed patient comes from the normalised cache.
  const target = created[1]!;
  const cached = await client.query(PatientSummaryDocument, { id: target }, { requestPolicy: 'cache-only' }).toPromise();
  assert.equal(cached.data?.patient?.name, 'Urql Patient 2');

  // The server's answer to an update replaces the record everywhere.
  const updated = await client
    .mutation(UpdatePatientDocument, { id: target, input: { name: 'Urql Patient Two', email: 'two@example.org' } })
    .toPromise();
  assert.equal(updated.data?.updatePatient.email, 'two@example.org');
  const again = await client.query(PatientSummaryDocument, { id: target }, { requestPolicy: 'cache-only' }).toPromise();
  assert.equal(again.data?.patient?.name, 'Urql Patient Two');
  const list = await client.query(PatientsDocument, { first: 2 }, { requestPolicy: 'cache-only' }).toPromise();
  assert.equal(list.data?.patients.edges.find((edge) => edge.node.id === target)?.node.name, 'Urql Patient Two');

  // A full read, doctors included, goes to the server.
  const full = await client.query(PatientDocument, { id: target }).toPromise();
  assert.deepEqual(full.data?.patient?.doctors, []);

  const deleted = await client.mutation(DeletePatientDocument, { id: target }).toPromise();
  assert.equal(deleted.data?.deletePatient, target);
  const gone = await client.query(PatientSummaryDocument, { id: target }, { requestPolicy: 'network-only' }).toPromise();
  assert.equal(gone.error, undefined);
  assert.equal(gone.data?.patient, null);

  // Errors carry their code (and the offending field) in extensions.
  const invalid = await client.mutation(CreatePatientDocument, { input: { name: 'x'.repeat(10_000) } }).toPromise();
  assert.equal(invalid.error?.graphQLErrors[0]?.extensions.code, 'BAD_USER_INPUT');
  assert.equal(invalid.error?.graphQLErrors[0]?.extensions.field, 'name');
  const bob = await signUp('Urql Bob');
  const bobsDoctor = await createDoctor(bob.token, 'Dr Urql Bob');
  const forbidden = await client.mutation(UpdateDoctorDocument, { id: bobsDoctor, input: { specialization: 'x' } }).toPromise();
  assert.equal(forbidden.error?.graphQLErrors[0]?.extensions.code, 'FORBIDDEN');
  const count = await client.query(PatientsDocument, { first: 1 }, { requestPolicy: 'network-only' }).toPromise();
  assert.equal(count.data?.patients.totalCount, 4);

  // Bob's client sees none of Una's patients.
  const bobs = urqlClient(API_URL, { token: bob.token }, { trusted: TRUSTED });
  const bobsList = await bobs.query(PatientsDocument, { first: 100 }).toPromise();
  assert.equal(bobsList.data?.patients.totalCount, 0);
  const bobsRead = await bobs.query(PatientSummaryDocument, { id: created[0]! }).toPromise();
  assert.equal(bobsRead.data?.patient, null);
});

test('urql receives assignment events through its subscription exchange', async () => {
  const una = await signUp('Urql Subscriber');
  const client = urqlClient(API_URL, { token: una.token }, { trusted: TRUSTED });
  const patient = (await client.mutation(CreatePatientDocument, { input: { name: 'Urql Watched' } }).toPromise()).data!
    .createPatient.id;

  const received = new Received<MappingEventsSubscription['mappingEvents']>();
  const errors: unknown[] = [];
  const { unsubscribe } = pipe(
    client.subscription(MappingEventsDocument, { patientId: patient }),
    subscribe((result) => (result.data ? received.push(result.data.mappingEvents) : errors.push(result.error))),
  );
  try {
    await untilLive(received, async () => {
      const doctor = await createDoctor(una.token, 'Dr Urql Watched');
      const mapping = (
        await client.mutation(AssignDoctorDocument, { input: { patientId: patient, doctorId: doctor } }).toPromise()
      ).data!.assignDoctor.id;
      return (event) => event.kind === 'ASSIGNED' && event.mappingId === mapping;
    });
    assert.deepEqual(errors, []);
  } finally {
    unsubscribe();
  }
});
