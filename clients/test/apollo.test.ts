import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CombinedGraphQLErrors } from '@apollo/client';
import * as OTPAuth from 'otpauth';
import { apolloClient } from '../src/apollo.ts';
import { TRUSTED } from '../src/persisted.ts';
import type { Session } from '../src/session.ts';
import {
  AssignDoctorDocument,
  BeginTotpEnrollmentDocument,
  ConfirmTotpDocument,
  CreatePatientDocument,
  DeletePatientDocument,
  DisableTotpDocument,
  LoginDocument,
  MappingEventsDocument,
  MeDocument,
  MfaStatusDocument,
  PatientDocument,
  PatientSummaryDocument,
  PatientFieldsFragmentDoc,
  PatientsDocument,
  RegisterDocument,
  UpdateDoctorDocument,
  UpdatePatientDocument,
  type MappingEventsSubscription,
} from '../src/generated/graphql.ts';
import { API_URL, Received, createDoctor, createPatient, newAccount, signUp, untilLive } from './api.ts';

// The GraphQL error code of a failed Apollo operation.
function codeOf(error: unknown): { code: unknown; field: unknown } {
  assert.ok(CombinedGraphQLErrors.is(error), `expected GraphQL errors, got ${String(error)}`);
  const extensions = error.errors[0]?.extensions ?? {};
  return { code: extensions.code, field: extensions.field };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('the operation succeeded');
}

test('Apollo Client signs up, signs in through a bearer link, pages, updates and deletes', async () => {
  const session: Session = { token: null };
  const client = apolloClient(API_URL, session, { trusted: TRUSTED });
  const account = newAccount('Apollo Ann');

  // Without a token, a protected read is UNAUTHENTICATED.
  assert.deepEqual(codeOf(await rejection(client.query({ query: MeDocument }))).code, 'UNAUTHENTICATED');

  const registered = await client.mutate({ mutation: RegisterDocument, variables: { input: account } });
  assert.equal(registered.data?.register.tokenType, 'Bearer');
  const login = await client.mutate({
    mutation: LoginDocument,
    variables: { input: { email: account.email.toUpperCase(), password: account.password } },
  });
  assert.ok(login.data);
  session.token = login.data.login.accessToken;
  assert.equal(login.data.login.user.email, account.email);

  const me = await client.query({ query: MeDocument, fetchPolicy: 'network-only' });
  assert.equal(me.data?.me.email, account.email);
  assert.equal(me.data?.me.role, 'USER');

  // Seven patients, created one after another.
  const created: string[] = [];
  for (let n = 1; n <= 7; n++) {
    const result = await client.mutate({
      mutation: CreatePatientDocument,
      variables: { input: { name: `Apollo Patient ${n}`, dateOfBirth: '1980-02-29', gender: 'FEMALE' } },
    });
    assert.ok(result.data);
    assert.equal(result.data.createPatient.name, `Apollo Patient ${n}`);
    created.push(result.data.createPatient.id);
  }

  // Newest first, three at a time; the cursor field policy merges the pages.
  const list = client.watchQuery({ query: PatientsDocument, variables: { first: 3 } });
  // What the screen shows: the last list the query emitted.
  let shown = 0;
  const watching = list.subscribe((result) => {
    shown = result.data?.patients?.edges?.length ?? 0;
  });
  // The list as the cache holds it now: every page fetched so far, merged.
  const current = () => {
    const result = client.readQuery({ query: PatientsDocument, variables: { first: 3 } });
    assert.ok(result);
    return result.patients;
  };
  try {
    const first = await list.refetch();
    assert.equal(first.data?.patients.edges.length, 3);
    assert.equal(first.data?.patients.totalCount, 7);
    let fetches = 1;
    while (current().pageInfo.hasNextPage && fetches < 10) {
      const more = await list.fetchMore({ variables: { after: current().pageInfo.endCursor } });
      assert.ok(more.data && more.data.patients.edges.length <= 3);
      fetches += 1;
    }
    assert.equal(fetches, 3);
    const merged = current();
    assert.deepEqual(
      merged.edges.map((edge) => edge.node.id),
      [...created].reverse(),
    );
    assert.equal(merged.pageInfo.hasNextPage, false);
    // The watching query emits the merged list too.
    for (let wait = 0; shown < 7 && wait < 100; wait++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(shown, 7);

    // One cached list per search: a search does not disturb the merged list.
    const searched = await client.query({ query: PatientsDocument, variables: { first: 3, search: 'patient 3' } });
    assert.deepEqual(
      searched.data?.patients.edges.map((edge) => edge.node.id),
      [created[2]],
    );

    // An update is normalised by id into every cached copy of the patient.
    const target = created[2]!;
    const updated = await client.mutate({
      mutation: UpdatePatientDocument,
      variables: { id: target, input: { name: 'Apollo Patient Three', dateOfBirth: null, phone: '+44 20 7946 0000' } },
    });
    assert.equal(updated.data?.updatePatient.name, 'Apollo Patient Three');
    assert.equal(updated.data?.updatePatient.dateOfBirth, null);
    const cached = client.cache.readFragment({
      id: client.cache.identify({ __typename: 'Patient', id: target }),
      fragment: PatientFieldsFragmentDoc,
      fragmentName: 'PatientFields',
    });
    assert.equal(cached?.name, 'Apollo Patient Three');
    assert.equal(cached?.phone, '+44 20 7946 0000');
    const inList = current().edges.find((edge) => edge.node.id === target);
    assert.equal(inList?.node.name, 'Apollo Patient Three');
    // patient(id) is answered from the cache, without a request.
    const fromCache = await client.query({ query: PatientSummaryDocument, variables: { id: target }, fetchPolicy: 'cache-only' });
    assert.equal(fromCache.data?.patient?.name, 'Apollo Patient Three');

    // Delete, then evict: the server no longer has it, and neither has the cache.
    const deleted = await client.mutate({ mutation: DeletePatientDocument, variables: { id: target } });
    assert.equal(deleted.data?.deletePatient, target);
    client.cache.evict({ id: client.cache.identify({ __typename: 'Patient', id: target }) });
    client.cache.gc();
    const gone = await client.query({ query: PatientDocument, variables: { id: target }, fetchPolicy: 'network-only' });
    assert.equal(gone.data?.patient, null);
    const after = await client.query({ query: PatientsDocument, variables: { first: 10 }, fetchPolicy: 'network-only' });
    assert.equal(after.data?.patients.totalCount, 6);
    assert.ok(!after.data?.patients.edges.some((edge) => edge.node.id === target));
  } finally {
    watching.unsubscribe();
  }

  // Invalid input: BAD_USER_INPUT naming the field; nothing is created.
  const invalid = codeOf(
    await rejection(client.mutate({ mutation: CreatePatientDocument, variables: { input: { name: '   ' } } })),
  );
  assert.deepEqual(invalid, { code: 'BAD_USER_INPUT', field: 'name' });
  const badDate = codeOf(
    await rejection(
      client.mutate({ mutation: CreatePatientDocument, variables: { input: { name: 'Dated', dateOfBirth: '1980-02-30' } } }),
    ),
  );
  assert.deepEqual(badDate, { code: 'BAD_USER_INPUT', field: 'dateOfBirth' });
  const count = await client.query({ query: PatientsDocument, variables: { first: 1 }, fetchPolicy: 'network-only' });
  assert.equal(count.data?.patients.totalCount, 6);

  // Another user's doctor: FORBIDDEN to change; another user's patient: not there.
  const bob = await signUp('Apollo Bob');
  const bobsDoctor = await createDoctor(bob.token, 'Dr Bob');
  const forbidden = codeOf(
    await rejection(
      client.mutate({ mutation: UpdateDoctorDocument, variables: { id: bobsDoctor, input: { name: 'Dr Ann' } } }),
    ),
  );
  assert.equal(forbidden.code, 'FORBIDDEN');
  const bobsView = await apolloClient(API_URL, { token: bob.token }, { trusted: TRUSTED }).query({
    query: PatientDocument,
    variables: { id: created[0]! },
  });
  assert.equal(bobsView.data?.patient, null);

  client.stop();
});

test('Apollo Client receives assignment events through GraphQLWsLink', async () => {
  const ann = await signUp('Apollo Subscriber');
  const client = apolloClient(API_URL, { token: ann.token }, { trusted: TRUSTED });
  const patient = (
    await client.mutate({ mutation: CreatePatientDocument, variables: { input: { name: 'Watched Patient' } } })
  ).data!.createPatient.id;

  type Event = MappingEventsSubscription['mappingEvents'];
  const received = new Received<Event>();
  const failures: unknown[] = [];
  const subscription = client
    .subscribe({ query: MappingEventsDocument, variables: { patientId: patient } })
    .subscribe({
      next: (result) => (result.data ? received.push(result.data.mappingEvents) : failures.push(result.error)),
      error: (error) => failures.push(error),
    });
  try {
    await untilLive(received, async () => {
      const doctor = await createDoctor(ann.token, 'Dr Watched');
      const result = await client.mutate({
        mutation: AssignDoctorDocument,
        variables: { input: { patientId: patient, doctorId: doctor } },
      });
      const mapping = result.data!.assignDoctor.id;
      return (event) => event.kind === 'ASSIGNED' && event.mappingId === mapping && event.doctorId === doctor;
    });
    assert.deepEqual(failures, []);
    assert.ok(received.items.every((event) => event.patientId === patient && event.kind === 'ASSIGNED'));
  } finally {
    subscription.unsubscribe();
    client.stop();
  }
});

// The current 30-second step, once at least `needed` seconds of it are left,
// so that a test's codes do not roll over under it.
async function freshStep(needed: number): Promise<number> {
  for (;;) {
    const now = Date.now() / 1000;
    if (30 - (now % 30) >= needed) {
      return Math.floor(now / 30);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

test('Apollo Client turns MFA on with an authenticator app and signs in with a second factor', async () => {
  const session: Session = { token: null };
  const client = apolloClient(API_URL, session, { trusted: TRUSTED });
  const account = newAccount('Apollo Mfa');
  const { email, password } = account;
  try {
    const registered = await client.mutate({ mutation: RegisterDocument, variables: { input: account } });
    session.token = registered.data!.register.accessToken;

    // What an authenticator app makes of the enrollment's URI.
    const enrollment = (await client.mutate({ mutation: BeginTotpEnrollmentDocument })).data!.beginTotpEnrollment;
    const app = OTPAuth.URI.parse(enrollment.otpauthUri);
    assert.ok(app instanceof OTPAuth.TOTP);
    assert.equal(app.secret.base32, enrollment.secret);
    assert.equal(app.digits, 6);
    assert.equal(app.period, 30);
    assert.equal(app.algorithm, 'SHA1');
    assert.match(enrollment.qrCodeSvg, /^<\?xml[\s\S]*<svg[\s\S]*<\/svg>\s*$/);
    const code = (step: number) => app.generate({ timestamp: step * 30_000 });

    const step = await freshStep(10);
    const confirmed = await client.mutate({ mutation: ConfirmTotpDocument, variables: { code: code(step) } });
    const recovery = confirmed.data!.confirmTotp;
    assert.equal(recovery.length, 10);
    const status = await client.query({ query: MfaStatusDocument, fetchPolicy: 'network-only' });
    assert.equal(status.data?.me.mfaEnabled, true);

    // Signed out, a login now needs the second factor.
    session.token = null;
    const needed = await rejection(client.mutate({ mutation: LoginDocument, variables: { input: { email, password } } }));
    assert.deepEqual(codeOf(needed), { code: 'MFA_REQUIRED', field: 'totpCode' });
    // The code that turned MFA on was used; the app's next one works, once.
    const used = await rejection(
      client.mutate({ mutation: LoginDocument, variables: { input: { email, password, totpCode: code(step) } } }),
    );
    assert.equal(codeOf(used).code, 'UNAUTHENTICATED');
    const withCode = { input: { email, password, totpCode: code(step + 1) } };
    const login = await client.mutate({ mutation: LoginDocument, variables: withCode });
    assert.equal(login.data?.login.user.email, email);
    const replayed = await rejection(client.mutate({ mutation: LoginDocument, variables: withCode }));
    assert.equal(codeOf(replayed).code, 'UNAUTHENTICATED');

    // A recovery code signs in once; another turns MFA off.
    const withRecovery = { input: { email, password, totpCode: recovery[0] } };
    const recovered = await client.mutate({ mutation: LoginDocument, variables: withRecovery });
    session.token = recovered.data!.login.accessToken;
    assert.equal(codeOf(await rejection(client.mutate({ mutation: LoginDocument, variables: withRecovery }))).code, 'UNAUTHENTICATED');
    const off = await client.mutate({ mutation: DisableTotpDocument, variables: { password, code: recovery[1] } });
    assert.equal(off.data?.disableTotp, true);
    const after = await client.query({ query: MfaStatusDocument, fetchPolicy: 'network-only' });
    assert.equal(after.data?.me.mfaEnabled, false);
  } finally {
    client.stop();
  }
});

test(
  'Apollo Client sends only hashes once the server knows a query (automatic persisted queries, GET for hashed queries)',
  { skip: TRUSTED && 'a server of trusted documents learns no document' },
  async () => {
  const { token } = await signUp('Apq Ann');
  await createPatient(token, 'Persisted Patient');
  // What goes over the wire: each request's method and whether it carries
  // the document's text.
  const wire: { method: string; text: boolean; status: number }[] = [];
  const watching: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as { query?: string }) : {};
    const response = await fetch(input, init);
    wire.push({
      method: init?.method ?? 'GET',
      text: url.searchParams.has('query') || typeof body.query === 'string',
      status: response.status,
    });
    return response;
  };
  const client = apolloClient(API_URL, { token }, { persistedQueries: true, fetch: watching });
  try {
    const read = () => client.query({ query: PatientsDocument, variables: { first: 5 }, fetchPolicy: 'network-only' });
    const first = await read();
    assert.equal(first.data?.patients.edges[0]?.node.name, 'Persisted Patient');
    const second = await read();
    assert.equal(second.data?.patients.edges[0]?.node.name, 'Persisted Patient');
    // The hash alone (unknown yet), then the text with its hash, then the
    // hash alone again: by GET, as the link sends hashed queries.
    assert.deepEqual(
      wire.map(({ method, text }) => ({ method, text })),
      [
        { method: 'GET', text: false },
        { method: 'POST', text: true },
        { method: 'GET', text: false },
      ],
    );
    assert.deepEqual(
      wire.map(({ status }) => status),
      [400, 200, 200],
      'the miss is a request error under application/graphql-response+json',
    );
    // A mutation goes by POST, its hash learnt the same way.
    const created = await client.mutate({
      mutation: CreatePatientDocument,
      variables: { input: { name: 'Persisted Two', gender: 'MALE' } },
    });
    assert.ok(created.data?.createPatient.id);
    assert.ok(wire.slice(3).every(({ method }) => method === 'POST'));
  } finally {
    client.stop();
  }
},
);

test(
  'with trusted documents only, a document the manifest does not list is refused and runs nothing',
  { skip: !TRUSTED && 'the server runs any document' },
  async () => {
    const { token } = await signUp('Trusted Ann');
    const other = 'mutation { createPatient(input: { name: "Not Listed", gender: FEMALE }) { id } }';
    for (const body of [{ query: other }, { documentId: `sha256:${'0'.repeat(64)}` }]) {
      const response = await fetch(`${API_URL}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
      const answer = (await response.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] };
      assert.equal(answer.errors?.[0]?.extensions?.code, 'PERSISTED_QUERY_NOT_FOUND');
      assert.equal(answer.data, undefined);
    }
    const client = apolloClient(API_URL, { token }, { trusted: TRUSTED });
    try {
      const listed = await client.query({ query: PatientsDocument, variables: { first: 5 }, fetchPolicy: 'network-only' });
      assert.equal(listed.data?.patients.totalCount, 0);
    } finally {
      client.stop();
    }
  },
);
