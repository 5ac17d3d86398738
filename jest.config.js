/** @type {import('jest').Config} */
module.exports = {
  // onnxruntime-node builds outputs with the process's typed-array classes; this environment shares them.
  testEnvironment: '<rootDir>/test/helpers/onnx-jest-environment.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Type checking is `npm run typecheck` (tsc --noEmit); ts-jest only transpiles.
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 30000,
};
