/**
 * Checks a request's input tensors against a model's declared inputs before anything runs:
 * structure and limits first (attestation/tensors), then name, datatype, rank and fixed
 * dimensions of each input, then that no declared input is missing.
 */
import { TeegateError } from '../../attestation/errors';
import { parseInferTensors, type InferTensor } from '../../attestation/tensors';
import type { TensorSpec } from './served-model';

export function checkInputs(specs: readonly TensorSpec[], inputs: unknown): InferTensor[] {
  const tensors = parseInferTensors(inputs, 'inputs');
  const byName = new Map(specs.map((s) => [s.name, s]));
  for (const t of tensors) {
    const spec = byName.get(t.name);
    if (spec === undefined) {
      throw new TeegateError(
        'TENSOR_NAME_UNKNOWN',
        `input "${t.name}" is not an input of the model (inputs: ${specs.map((s) => s.name).join(', ')})`,
      );
    }
    if (t.datatype !== spec.datatype) {
      throw new TeegateError('TENSOR_DATATYPE_MISMATCH', `input "${t.name}" must be ${spec.datatype}, not ${t.datatype}`);
    }
    const fits =
      t.shape.length === spec.shape.length && spec.shape.every((dim, i) => dim === -1 || dim === t.shape[i]);
    if (!fits) {
      throw new TeegateError(
        'TENSOR_SHAPE_MISMATCH',
        `input "${t.name}" has shape [${t.shape.join(', ')}], the model takes [${spec.shape.join(', ')}]`,
      );
    }
  }
  for (const spec of specs) {
    if (!tensors.some((t) => t.name === spec.name)) {
      throw new TeegateError('TENSOR_MISSING', `input "${spec.name}" is missing`);
    }
  }
  return tensors;
}
