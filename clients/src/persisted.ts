import type { DocumentNode } from 'graphql';

// The SHA-256 that graphql-codegen gave a generated document (its
// `__meta__.hash`, "sha256:<hex>"), as the hex a persisted-query extension
// carries: what a client sends instead of the document when the server
// runs only trusted documents.
export function documentHash(document: DocumentNode): string {
  const hash = (document as { __meta__?: { hash?: string } }).__meta__?.hash;
  if (!hash) {
    throw new Error('this document has no hash: send only the documents generated in src/generated');
  }
  return hash.replace(/^sha256:/, '');
}

// Whether the clients run against a server in trusted-documents mode
// (`scripts/clients --trusted`): they then send document hashes only.
export const TRUSTED = process.env.CLIENTS_TRUSTED === '1';
