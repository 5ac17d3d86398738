/** Writes the generated tiny ONNX models to a folder and returns their model configs. */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { affineModel } from '../../enclave/models/testing/tiny-onnx';
import type { ModelConfig } from '../../enclave/models/model-config';

export function tinyModelConfigs(dir = mkdtempSync(join(tmpdir(), 'teegate-models-'))): ModelConfig[] {
  const bytes = affineModel();
  const path = join(dir, 'affine.onnx');
  writeFileSync(path, bytes);
  return [{ name: 'affine', version: '1', kind: 'onnx', path, sha256: createHash('sha256').update(bytes).digest('hex') }];
}

/** y = 2x + 1 on a [1, 4] FP32 input. */
export function affineRequest(values: number[] = [1, 2, 3, 4]) {
  return { inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [1, 4], data: values }] };
}
