import { randomUUID } from 'node:crypto';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import {
  AssignDoctorDocument,
  CreateDoctorDocument,
  CreatePatientDocument,
  RegisterDocument,
  RemoveMappingDocument,
} from '../src/generated/graphql.ts';
import { TRUSTED, documentHash } from '../src/persisted.ts';

// The server under test: scripts/clients starts one on a throwaway database
// and passes its address in API_URL.
const url = process.env.API_URL;
if (!url) {
  throw new Error('API_URL is not set: run the clients through scripts/clients');
}
export const API_URL: string = url.replace(/\/$/, '');
export const WS_URL = `${API_URL.replace(/^http/, 'ws')}/graphql/ws`;

export interface Account {
  name: string;
  email: string;
  password: string;
}

// A new account for one test, so tests never see each other's records.
export function newAccount(name: string): Account {
  const tag = randomUUID().slice(0, 8);
  return {
    name,
    email: `${name.toLowerCase().replace(/[^a-z]+/g, '.')}.${tag}@example.org`,
    password: `password of ${name} ${tag}`,
  };
}

// A plain GraphQL request, for setting up what a test needs but does not
// test: one of the generated documents, sent as its text, or by its hash
// against a server that runs only trusted documents.
export async function graphql<T, V>(document: TypedDocumentNode<T, V>, variables: V, token?: string): Promise<T> {
  const sent = TRUSTED ? { documentId: `sha256:${documentHash(document)}` } : { query: print(document) };
  const response = await fetch(`${API_URL}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ ...sent, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: unknown[] };
  if (body.errors?.length || !body.data) {
    throw new Error(`request failed: ${JSON.stringify(body.errors)}`);
  }
  return body.data;
}

// Registers an account and returns its access token and user id.
export async function signUp(name: string): Promise<{ token: string; userId: string; account: Account }> {
  const account = newAccount(name);
  const data = await graphql(RegisterDocument, { input: account });
  return { token: data.register.accessToken, userId: data.register.user.id, account };
}

export async function createPatient(token: string, name: string): Promise<string> {
  const data = await graphql(CreatePatientDocument, { input: { name } }, token);
  return data.createPatient.id;
}

export async function createDoctor(token: string, name: string): Promise<string> {
  const data = await graphql(CreateDoctorDocument, { input: { name, specialization: 'Cardiology' } }, token);
  return data.createDoctor.id;
}

export async function assignDoctor(token: string, patientId: string, doctorId: string): Promise<string> {
  const data = await graphql(AssignDoctorDocument, { input: { patientId, doctorId } }, token);
  return data.assignDoctor.id;
}

export async function removeMapping(token: string, id: string): Promise<void> {
  await graphql(RemoveMappingDocument, { id }, token);
}

// What a subscription has delivered so far, with a way to wait for an item.
export class Received<E> {
  readonly items: E[] = [];
  private readonly waiting = new Set<() => void>();

  push(item: E): void {
    this.items.push(item);
    for (const wake of this.waiting) wake();
  }

  // The first item matching `wanted`, or undefined once `ms` have passed.
  async waitFor(wanted: (item: E) => boolean, ms = 5000): Promise<E | undefined> {
    const found = () => this.items.find(wanted);
    if (found()) return found();
    return new Promise((resolve) => {
      const wake = () => {
        const item = found();
        if (item !== undefined) finish(item);
      };
      const timer = setTimeout(() => finish(undefined), ms);
      const finish = (item: E | undefined) => {
        clearTimeout(timer);
        this.waiting.delete(wake);
        resolve(item);
      };
      this.waiting.add(wake);
    });
  }
}

// No protocol message says that the server has started a subscription, so a
// test that must not miss an event first makes changes (`probe` makes one
// and returns how to recognise its event) until the subscriber sees one.
export async function untilLive<E>(received: Received<E>, probe: () => Promise<(item: E) => boolean>): Promise<void> {
  const probes: ((item: E) => boolean)[] = [];
  for (let attempt = 0; attempt < 20; attempt++) {
    probes.push(await probe());
    if (await received.waitFor((item) => probes.some((seen) => seen(item)), 500)) return;
  }
  throw new Error('the subscription never delivered an event');
}
