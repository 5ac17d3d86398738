/** What every served model (plain ONNX or OCR) offers the registry. */
import type { InferTensor, OipDatatype } from '../../attestation/tensors';
import type { ModelConfig } from './model-config';

/** An input or output as OIP model metadata describes it; -1 marks a dynamic dimension. */
export interface TensorSpec {
  name: string;
  datatype: OipDatatype;
  shape: number[];
}

export interface ServedModel {
  readonly config: ModelConfig;
  /** OIP `platform`, e.g. "onnxruntime_onnx". */
  readonly platform: string;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /**
   * Runs the model on inputs already parsed and checked against `inputs` (checkInputs: typed
   * TENSOR_* errors before the model runs) and returns its outputs as OIP
   * tensors with flat data.
   */
  run(checked: readonly InferTensor[]): Promise<InferTensor[]>;
  close(): Promise<void>;
}
