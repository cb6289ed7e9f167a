import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Layer rules: stages and domain code depend on ports only; vendor SDKs live inside their adapter folders.
const VENDOR_SDKS = ['kafkajs', '@qdrant/*', 'onnxruntime-node', 'node-llama-cpp', 'hnswlib-node', 'testcontainers'];
const vendorImportBan = {
  'no-restricted-imports': [
    'error',
    {
      patterns: [
        { group: VENDOR_SDKS, message: 'Stages and core code use port interfaces; vendor SDKs belong in adapters.' },
        { group: ['**/main.ts'], message: 'Only the CLI imports the composition root.' },
      ],
    },
  ],
};

// CST words the facts its callers compute; the evidence stage, STAR's prompt and the teacher's tools all use it,
// so it imports none of them (a folder cycle between stages/ and star/ came from CST living in stages/).
const CST_CALLERS = ['**/stages/**', '**/star/**', '**/teacher/**', '**/pipeline/**', '**/ops/**', '**/store/**', '**/eval/**', '**/cli/**'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.cache/**', '.scratch/**', 'train/**', 'bench/results/**', 'out/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    files: ['src/stages/**', 'src/domain/**', 'src/pipeline/**', 'src/config/**', 'src/errors/**', 'src/eval/**', 'src/data/**'],
    rules: vendorImportBan,
  },
  {
    files: ['src/cst/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...vendorImportBan['no-restricted-imports'][1].patterns,
            { group: CST_CALLERS, message: 'CST is below its callers (evidence, STAR, teacher tools): it imports none of them.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/star/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/stages/**'], message: 'The stages call STAR through its port; STAR reads CST from src/cst, never from the stages.' }] },
      ],
    },
  },
);
