/**
 * An onnxruntime session owned by a worker thread (ort-worker.js), so inference never blocks the
 * enclave's event loop: health, attestation, receipts and other requests stay responsive under
 * load. Each model has its own thread, or several (instances), each with its own session; an
 * instance runs its requests in order. A model's pre-processing may run in that thread too
 * (WorkerPrepare, runPrepared).
 */
import { TeegateError, isErrorCode } from '../../attestation/errors';
import { MAX_INSTANCES } from './model-config';
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

type Ready = Extract<WorkerMessage, { type: 'ready' }>;

/** One worker thread with its session: the runs posted to it and not yet answered. */
class Instance {
  private nextId = 0;
  readonly pending = new Map<number, { resolve: (v: Record<string, PlainTensor>) => void; reject: (e: Error) => void }>();
  closed = false;
  /** How many times this worker has called session.run (pre-processing refusals never count). */
  runs = 0;

  constructor(readonly worker: Worker) {
    worker.on('message', (msg: WorkerMessage) => this.onMessage(msg));
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', (code) => {
      // A dead worker drops messages silently: its runs must fail, not wait forever.
      this.closed = true;
      this.failAll(new Error(`the model worker exited (code ${code})`));
    });
  }

  /** Starts a worker and resolves once its session is ready (rejects with onnxruntime's message, or why the pre-processing could not be loaded). */
  static start(model: Uint8Array, options: InferenceSession.SessionOptions, prepare?: WorkerPrepare): Promise<{ instance: Instance; ready: Ready }> {
    const worker = new Worker(WORKER, { workerData: { model, options, prepare } });
    return new Promise((resolve, reject) => {
      const settle = () => {
        worker.off('error', onError);
        worker.off('exit', onExit);
        worker.off('message', onMessage);
      };
      const onMessage = (msg: WorkerMessage) => {
        settle();
        if (msg.type === 'ready') resolve({ instance: new Instance(worker), ready: msg });
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

  post(message: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<Record<string, PlainTensor>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  private onMessage(msg: WorkerMessage): void {
    if (msg.type !== 'result' && msg.type !== 'error') return;
    const waiter = this.pending.get(msg.id);
    if (!waiter) return;
    this.pending.delete(msg.id);
    if (msg.type === 'result' || msg.stage === 'run') this.runs++;
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

export class ModelSession {
  private closed = false;

  private constructor(
    private readonly instances: readonly Instance[],
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    readonly inputMetadata: readonly Metadata[],
    readonly outputMetadata: readonly Metadata[],
  ) {}

  /**
   * Starts `instances` workers (1 to MAX_INSTANCES), each with a session of the model bytes and, if
   * given, the model's pre-processing; rejects with onnxruntime's message, or why the
   * pre-processing could not be loaded, once every worker has stopped. Several instances run that
   * many requests at once (each on `options.intraOpNumThreads` threads).
   */
  static async create(model: Uint8Array, options: InferenceSession.SessionOptions, prepare?: WorkerPrepare, instances = 1): Promise<ModelSession> {
    if (!Number.isInteger(instances) || instances < 1 || instances > MAX_INSTANCES) throw new RangeError(`instances must be an integer from 1 to ${MAX_INSTANCES}`);
    const started = await Promise.allSettled(Array.from({ length: instances }, () => Instance.start(model, options, prepare)));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    if (failed !== undefined) {
      await Promise.all(ok.map(({ instance }) => instance.worker.terminate()));
      throw failed.reason;
    }
    const { ready } = ok[0]!;
    return new ModelSession(
      ok.map(({ instance }) => instance),
      ready.inputNames,
      ready.outputNames,
      ready.inputMetadata,
      ready.outputMetadata,
    );
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

  /** How many times the workers have called session.run (pre-processing refusals never count). */
  get runs(): number {
    return this.instances.reduce((n, i) => n + i.runs, 0);
  }

  /** session.run calls per instance, in the order the instances were started. */
  get instanceRuns(): number[] {
    return this.instances.map((i) => i.runs);
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

  /**
   * Posts a run to the live instance with the fewest runs waiting, the first started among equals:
   * one request at a time always goes to the same worker, whose caches hold the model. A worker
   * that died is passed over; with none left, the run fails.
   */
  private post(type: 'run' | 'prepared', payload: { feeds: Record<string, PlainTensor> } | { input: Uint8Array }, fetches: readonly string[] | undefined, transfer: ArrayBuffer[] = []): Promise<Record<string, PlainTensor>> {
    if (this.closed) return Promise.reject(new Error('the model session is closed'));
    let best: Instance | undefined;
    for (const instance of this.instances) {
      if (!instance.closed && (best === undefined || instance.pending.size < best.pending.size)) best = instance;
    }
    if (best === undefined) return Promise.reject(new Error('every model worker has exited'));
    return best.post({ type, ...payload, ...(fetches ? { fetches: [...fetches] } : {}) }, transfer);
  }

  async release(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.instances.map((i) => i.worker.terminate()));
  }
}
