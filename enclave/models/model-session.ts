/**
 * An onnxruntime session owned by a worker thread (ort-worker.js), so inference never blocks the
 * enclave's event loop: health, attestation, receipts and other requests stay responsive under
 * load. Runs are queued in order; each model has its own thread. A model's pre-processing may run
 * in that thread too (WorkerPrepare, runPrepared).
 */
import { TeegateError, isErrorCode } from '../../attestation/errors';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Tensor, type InferenceSession } from 'onnxruntime-node';

type Metadata = InferenceSession.ValueMetadata;
/** A tensor as it crosses between threads. */
export type PlainTensor = { type: Tensor.Type; data: Tensor.DataType; dims: number[] };

/**
 * Pre-processing run in the model's worker thread, right before session.run: `module` (an absolute
 * path; TypeScript is loaded through tsx) exports `export`, a function (input bytes, the session's
 * input names) → feeds. It must throw a TeegateError for bad input: its code reaches the caller.
 */
export interface WorkerPrepare {
  readonly module: string;
  readonly export: string;
}

type WorkerMessage =
  | { type: 'ready'; inputNames: string[]; outputNames: string[]; inputMetadata: Metadata[]; outputMetadata: Metadata[] }
  | { type: 'result'; id: number; outputs: Record<string, PlainTensor> }
  | { type: 'error'; id: number; stage: 'prepare' | 'run'; code?: string; message: string }
  | { type: 'fatal'; message: string };

const WORKER = join(__dirname, 'ort-worker.js');

export class ModelSession {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: Record<string, PlainTensor>) => void; reject: (e: Error) => void }>();
  private closed = false;
  private sessionRuns = 0;

  private constructor(
    private readonly worker: Worker,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    readonly inputMetadata: readonly Metadata[],
    readonly outputMetadata: readonly Metadata[],
  ) {
    worker.on('message', (msg: WorkerMessage) => this.onMessage(msg));
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', (code) => {
      // A dead worker drops messages silently: later runs must fail, not wait forever.
      this.closed = true;
      this.failAll(new Error(`the model worker exited (code ${code})`));
    });
  }

  /**
   * Starts a worker with a session of the model bytes and, if given, the model's pre-processing
   * (rejects with onnxruntime's message, or why the pre-processing could not be loaded).
   */
  static create(model: Uint8Array, options: InferenceSession.SessionOptions, prepare?: WorkerPrepare): Promise<ModelSession> {
    const worker = new Worker(WORKER, { workerData: { model, options, prepare } });
    return new Promise((resolve, reject) => {
      const settle = () => {
        worker.off('error', onError);
        worker.off('exit', onExit);
        worker.off('message', onMessage);
      };
      const onMessage = (msg: WorkerMessage) => {
        settle();
        if (msg.type === 'ready') resolve(new ModelSession(worker, msg.inputNames, msg.outputNames, msg.inputMetadata, msg.outputMetadata));
        else {
          void worker.terminate();
          reject(new Error(msg.type === 'fatal' ? msg.message : `unexpected message ${msg.type} from the model worker`));
        }
      };
      const onError = (err: Error) => {
        settle();
        reject(err);
      };
      const onExit = (code: number) => {
        settle();
        reject(new Error(`the model worker exited (code ${code}) before its session was ready`));
      };
      worker.on('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
    });
  }

  /**
   * Runs the model on `feeds` and returns the outputs named in `fetches` (default: all; onnxruntime
   * computes only what they need). Takes ownership of the feeds' typed arrays: each one that covers
   * its whole ArrayBuffer is moved to the worker without a copy and is detached (empty) afterwards;
   * callers pass arrays made for this run (toOrtTensor does). Any failure
   * is MODEL_RUN_FAILED.
   */
  async run(feeds: Record<string, Tensor>, fetches?: readonly string[]): Promise<Record<string, Tensor>> {
    const transfer: ArrayBuffer[] = [];
    const plain = Object.fromEntries(
      Object.entries(feeds).map(([name, t]) => {
        const data = t.data;
        if (ArrayBuffer.isView(data) && data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && !transfer.includes(data.buffer)) {
          transfer.push(data.buffer);
        }
        return [name, { type: t.type, data, dims: [...t.dims] }];
      }),
    );
    return this.outcome(this.post('run', { feeds: plain }, fetches, transfer));
  }

  /**
   * Runs the model on the feeds the worker's pre-processing (WorkerPrepare) makes of `input`, which
   * is copied to the worker. A pre-processing refusal rejects with its own code, before session.run;
   * a failure of the pre-processing that is not a TeegateError is INTERNAL; any other failure is
   * MODEL_RUN_FAILED.
   */
  runPrepared(input: Uint8Array, fetches?: readonly string[]): Promise<Record<string, Tensor>> {
    return this.outcome(this.post('prepared', { input }, fetches));
  }

  /** How many times the worker has called session.run (pre-processing refusals never count). */
  get runs(): number {
    return this.sessionRuns;
  }

  private async outcome(reply: Promise<Record<string, PlainTensor>>): Promise<Record<string, Tensor>> {
    let outputs: Record<string, PlainTensor>;
    try {
      outputs = await reply;
    } catch (err) {
      if (err instanceof TeegateError) throw err;
      // onnxruntime's refusals, a closed session and a dead worker alike.
      throw new TeegateError('MODEL_RUN_FAILED', `onnxruntime: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return Object.fromEntries(Object.entries(outputs).map(([name, { type, data, dims }]) => [name, new Tensor(type, data, dims)]));
  }

  private post(type: 'run' | 'prepared', payload: { feeds: Record<string, PlainTensor> } | { input: Uint8Array }, fetches: readonly string[] | undefined, transfer: ArrayBuffer[] = []): Promise<Record<string, PlainTensor>> {
    if (this.closed) return Promise.reject(new Error('the model session is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type, id, ...payload, ...(fetches ? { fetches: [...fetches] } : {}) }, transfer);
    });
  }

  async release(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.worker.terminate();
  }

  private onMessage(msg: WorkerMessage): void {
    if (msg.type !== 'result' && msg.type !== 'error') return;
    const waiter = this.pending.get(msg.id);
    if (!waiter) return;
    this.pending.delete(msg.id);
    if (msg.type === 'result' || msg.stage === 'run') this.sessionRuns++;
    if (msg.type === 'result') waiter.resolve(msg.outputs);
    else if (msg.stage === 'run') waiter.reject(new Error(msg.message));
    else if (isErrorCode(msg.code)) waiter.reject(new TeegateError(msg.code, msg.message));
    else waiter.reject(new TeegateError('INTERNAL', `the model's pre-processing failed: ${msg.message}`));
  }

  private failAll(err: Error): void {
    for (const { reject } of this.pending.values()) reject(err);
    this.pending.clear();
  }
}
