// Types for the client code, generated from the server's exported schema (the
// repository's schema.graphql) and the operations the clients send
// (src/*.graphql). A schema change that breaks these operations fails
// `npm run codegen` or `tsc`.
//
// graphql-codegen's client preset, with persisted documents: every generated
// document carries its SHA-256 (`__meta__.hash`), and
// src/generated/persisted-documents.json lists them all: the manifest the
// server serves alone with TRUSTED_DOCUMENTS (`scripts/clients --trusted`).
// `__typename` is added to every selection in the manifest, as Apollo Client
// and Graphcache add it to what they send, since the server runs the
// manifest's text.
import { addTypenameSelectionDocumentTransform, type ClientPresetConfig } from '@graphql-codegen/client-preset';
import type { CodegenConfig } from '@graphql-codegen/cli';

const presetConfig: ClientPresetConfig = {
  fragmentMasking: false,
  persistedDocuments: true,
};

const config: CodegenConfig = {
  overwrite: true,
  schema: '../schema.graphql',
  documents: 'src/**/*.graphql',
  generates: {
    'src/generated/': {
      preset: 'client',
      presetConfig,
      documentTransforms: [addTypenameSelectionDocumentTransform],
      config: {
        strictScalars: true,
        scalars: { Date: 'string', DateTime: 'string' },
        enumsAsTypes: true,
        useTypeImports: true,
        avoidOptionals: { field: true },
      },
    },
  },
};

export default config;
