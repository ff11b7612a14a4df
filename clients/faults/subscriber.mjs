// A subscriber for the fault suite (scripts/faults, case `subscription`):
// subscribes to mappingEvents over graphql-ws with a token and prints each
// event as one line of JSON, until told to stop after a number of seconds.
// "connected" goes to standard error once the socket is acknowledged.
//
//   node clients/faults/subscriber.mjs ws://127.0.0.1:8000/graphql/ws TOKEN SECONDS
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, seconds] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  retryAttempts: 0,
  connectionParams: { Authorization: `Bearer ${token}` },
  on: { connected: () => console.error('connected') },
});
const stop = client.subscribe(
  { query: 'subscription { mappingEvents { kind mappingId patientId doctorId } }' },
  {
    next: (value) => console.log(JSON.stringify(value.data?.mappingEvents ?? value)),
    error: (err) => {
      console.error('the subscription failed:', err);
      process.exit(1);
    },
    complete: () => {},
  },
);
setTimeout(() => {
  stop();
  client.dispose();
  process.exit(0);
}, Number(seconds) * 1000);
