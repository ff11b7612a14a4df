import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serverAudits, type AuditResult } from 'graphql-http';
import { API_URL, signUp } from './api.ts';

// graphql-http's server audits: the conformance suite that the
// GraphQL-over-HTTP specification points to, run against the real server,
// one audit after another (all at once would meet MAX_CONCURRENT_REQUESTS).
async function audit(token?: string): Promise<AuditResult[]> {
  const fetchFn: typeof fetch = (input, init = {}) => {
    const headers = new Headers(init.headers);
    if (token) {
      headers.set('authorization', `Bearer ${token}`);
    }
    return fetch(input, { ...init, headers });
  };
  const results: AuditResult[] = [];
  for (const { fn } of serverAudits({ url: `${API_URL}/graphql`, fetchFn })) {
    results.push(await fn());
  }
  return results;
}

function problems(results: AuditResult[]): string[] {
  return results.filter((r) => r.status !== 'ok').map((r) => `${r.id} ${r.name}: ${r.status} ${'reason' in r ? r.reason : ''}`);
}

test('graphql-http: every server audit passes for an anonymous client', async () => {
  const results = await audit();
  assert.deepEqual(problems(results), []);
  assert.equal(results.length, 61);
});

test('graphql-http: every server audit passes with a token', async () => {
  const { token } = await signUp('Audit Ann');
  const results = await audit(token);
  assert.deepEqual(problems(results), []);
  assert.equal(results.length, 61);
});
