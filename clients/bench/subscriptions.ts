// Subscription figures for bench/subscriptions (which starts the servers):
//   - event latency: from sending assignDoctor to a replica until the event
//     reaches a subscriber on that replica and one on another replica on the
//     same database, one assignment at a time;
//   - memory of idle subscriptions: the first server's resident memory before
//     and after IDLE subscriptions are opened and left idle.
// Prints a Markdown table.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { API_URL, Received, assignDoctor, createDoctor, createPatient, signUp, untilLive } from '../test/api.ts';

const OTHER_URL = process.env.OTHER_URL!;
const SERVER_PID = process.env.SERVER_PID!;
const EVENTS = Number(process.env.EVENTS ?? 500);
const IDLE = Number(process.env.IDLE ?? 1000);
const PER_CONNECTION = Number(process.env.PER_CONNECTION ?? 50);
const QUERY = 'subscription ($p: ID) { mappingEvents(patientId: $p) { kind mappingId patientId doctorId at } }';

type Event = { mappingId: string };

function ws(base: string, token: string): Client {
  return createClient({
    url: `${base.replace(/^http/, 'ws')}/graphql/ws`,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
}

// Arrival times by mapping id.
function arrivals(client: Client, patient: string): { received: Received<Event>; at: Map<string, number> } {
  const received = new Received<Event>();
  const at = new Map<string, number>();
  client.subscribe<{ mappingEvents: Event }>(
    { query: QUERY, variables: { p: patient } },
    {
      next: (result) => {
        const event = result.data!.mappingEvents;
        at.set(event.mappingId, performance.now());
        received.push(event);
      },
      error: (error) => console.error('subscription failed', error),
      complete: () => {},
    },
  );
  return { received, at };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function rssKib(): number {
  const status = readFileSync(`/proc/${SERVER_PID}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

const user = await signUp('Bench Subscriber');
const patient = await createPatient(user.token, 'Bench Patient');
const doctors: string[] = [];
for (let i = 0; i < EVENTS + 40; i++) doctors.push(await createDoctor(user.token, `Dr Bench ${i}`));

const same = arrivals(ws(API_URL, user.token), patient);
const other = arrivals(ws(OTHER_URL, user.token), patient);
const probe = async () => {
  const mapping = await assignDoctor(user.token, patient, doctors.pop()!);
  return (event: Event) => event.mappingId === mapping;
};
await untilLive(same.received, probe);
await untilLive(other.received, probe);

const sameMs: number[] = [];
const otherMs: number[] = [];
for (let i = 0; i < EVENTS; i++) {
  const sent = performance.now();
  const mapping = await assignDoctor(user.token, patient, doctors[i]!);
  const seen = (event: Event) => event.mappingId === mapping;
  if (!(await same.received.waitFor(seen)) || !(await other.received.waitFor(seen))) {
    throw new Error(`event ${i} never arrived`);
  }
  sameMs.push(same.at.get(mapping)! - sent);
  otherMs.push(other.at.get(mapping)! - sent);
}

// Idle subscriptions: PER_CONNECTION on each connection, as a page with
// several live views would hold them.
const before = rssKib();
const idle: Client[] = [];
const idleReceived = new Received<Event>();
for (let opened = 0; opened < IDLE; opened += PER_CONNECTION) {
  const client = ws(API_URL, user.token);
  idle.push(client);
  for (let i = 0; i < Math.min(PER_CONNECTION, IDLE - opened); i++) {
    client.subscribe<{ mappingEvents: Event }>(
      { query: QUERY, variables: { p: patient } },
      { next: (r) => idleReceived.push(r.data!.mappingEvents), error: () => {}, complete: () => {} },
    );
  }
}
// They are all live once one event reaches every one of them.
let live = 0;
for (let attempt = 0; attempt < 20 && live < IDLE; attempt++) {
  const last = await probe();
  for (let wait = 0; live < IDLE && wait < 40; wait++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    live = idleReceived.items.filter(last).length;
  }
}
await new Promise((resolve) => setTimeout(resolve, 1000));
const after = rssKib();

const row = (name: string, values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const f = (ms: number) => ms.toFixed(2);
  return `| ${name} | ${values.length} | ${f(quantile(sorted, 0.5))} | ${f(quantile(sorted, 0.9))} | ${f(quantile(sorted, 0.99))} | ${f(sorted.at(-1)!)} |`;
};
console.log('| mutation to event | events | p50 ms | p90 ms | p99 ms | max ms |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
console.log(row('same replica', sameMs));
console.log(row('other replica', otherMs));
console.log('');
console.log('| idle subscriptions | live | RSS before MiB | RSS after MiB | per subscription KiB |');
console.log('| ---: | ---: | ---: | ---: | ---: |');
console.log(
  `| ${IDLE} | ${live} | ${(before / 1024).toFixed(1)} | ${(after / 1024).toFixed(1)} | ${((after - before) / IDLE).toFixed(1)} |`,
);
await Promise.all(idle.map((client) => client.dispose()));
process.exit(0);
