/**
 * Property tests (fast-check, fixed seed, bounded runs) of the graph the enclave derives from an
 * OCR model file (ocrGraph: hard-swish fusion, then the appended reduction), on arbitrary bytes and
 * on a small valid model with random byte edits. The file's digest is checked before this, so the
 * bytes are the operator's, not a client's; still, nothing but MODEL_LOAD_FAILED may escape, and
 * whatever comes back must read as a protobuf again.
 */
import fc from 'fast-check';
import { isTeegateError } from '../../attestation/errors';
import { ocrGraph } from '../../enclave/models/ocr-line-model';
import { ONNX_ELEMENT_TYPE, protoFields } from '../../enclave/models/onnx-proto';
import { buildOnnxModel } from '../../enclave/models/testing/tiny-onnx';

const SEED = 20261124;
const { FLOAT } = ONNX_ELEMENT_TYPE;

/** A hard-swish over [N, 3, 4] scores, then Softmax: the shape of graph ocrGraph is for. */
const MODEL = buildOnnxModel(
  {
    name: 'fuzz',
    inputs: [{ name: 'x', elemType: FLOAT, shape: ['N', 3, 4] }],
    outputs: [{ name: 'p', elemType: FLOAT, shape: ['N', 3, 4] }],
    initializers: [
      { name: 'three', elemType: FLOAT, dims: [], values: [3] },
      { name: 'six', elemType: FLOAT, dims: [], values: [6] },
    ],
    nodes: [
      { opType: 'Add', inputs: ['x', 'three'], outputs: ['a'] },
      { opType: 'Clip', inputs: ['a'], outputs: ['c'], floatAttributes: { min: 0, max: 6 } },
      { opType: 'Mul', inputs: ['x', 'c'], outputs: ['m'] },
      { opType: 'Div', inputs: ['m', 'six'], outputs: ['y'] },
      { opType: 'Softmax', inputs: ['y'], outputs: ['p'], intAttributes: { axis: 2 } },
    ],
  },
  9,
);

function derive(bytes: Uint8Array): string {
  try {
    const { model } = ocrGraph(bytes, 'fuzz');
    protoFields(model, 'derived');
    return 'ok';
  } catch (err) {
    if (!isTeegateError(err, 'MODEL_LOAD_FAILED')) throw new Error(`escaped: ${String(err)}`);
    return err.code;
  }
}

describe('ocrGraph on hostile bytes', () => {
  it('derives the untouched model', () => {
    expect(derive(MODEL)).toBe('ok');
  });

  it('lets nothing but MODEL_LOAD_FAILED escape on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        derive(bytes);
      }),
      { seed: SEED, numRuns: 3000, interruptAfterTimeLimit: 3000 },
    );
  });

  it('lets nothing but MODEL_LOAD_FAILED escape on a valid model with random byte edits', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(MODEL.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (edits) => {
        const bytes = MODEL.slice();
        for (const [at, value] of edits) bytes[at] = value;
        derive(bytes);
      }),
      { seed: SEED, numRuns: 3000, interruptAfterTimeLimit: 4000 },
    );
  });
});
