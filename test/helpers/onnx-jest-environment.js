/**
 * Jest's node environment gives each test file its own typed-array constructors, but
 * onnxruntime-node's native addon returns output tensors built with the process's own
 * Float32Array etc., so onnxruntime-common's `data instanceof Float32Array` check fails inside
 * jest ("A float32 tensor's data must be type of ..."). Test files that run models use this
 * environment (docblock `@jest-environment ./test/helpers/onnx-jest-environment.js`), which hands
 * the process's typed-array constructors to the test realm. Outside jest nothing changes.
 */
const { TestEnvironment } = require('jest-environment-node');

const TYPED_ARRAYS = [
  'ArrayBuffer', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
  'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array',
];

class OnnxJestEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of TYPED_ARRAYS) this.global[name] = globalThis[name];
  }
}

module.exports = OnnxJestEnvironment;
