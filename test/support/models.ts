/** Model tests: a request's inputs through one model as the enclave service takes them. */
import { checkInputs } from '../../enclave/models/input-check';
import { modelIdentity, type ModelIdentity, type ModelRegistry } from '../../enclave/models/model-registry';
import type { InferTensor } from '../../attestation/tensors';

/** Selects the model (MODEL_NOT_FOUND), checks the untrusted `inputs` (TENSOR_*), then runs it. */
export async function inferWith(registry: ModelRegistry, name: string, inputs: unknown, version?: string): Promise<{ model: ModelIdentity; outputs: InferTensor[] }> {
  const model = registry.get(name, version);
  return { model: modelIdentity(model), outputs: await model.run(checkInputs(model.inputs, inputs)) };
}
