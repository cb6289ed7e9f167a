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
);
