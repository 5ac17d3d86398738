/**
 * Starts an enclave: NSM (dev by default), models, boot, HTTP. Used in process by tests and
 * `teegate up`, and as a process by enclave/cli.ts.
 */
import type { Server } from 'node:http';
import { createDevCa, exportDevCa, importDevCa, type DevCa, type DevCaJson } from '../attestation/dev/dev-ca';
import { toHex } from '../attestation/bytes';
import type { EnclaveManifest } from '../attestation/manifest';
import { EnclaveService, type ModelStatus } from './enclave-service';
import { listenEnclaveHttp, type EnclaveHttpOptions } from './http-server';
import { measureDevEnclave } from './measurement';
import { defaultModelConfigs, type ModelConfig } from './models/model-config';
import { ModelRegistry, type LoadOptions } from './models/model-registry';
import { DevNsm } from './nsm/dev-nsm';
import { readOrCreate } from './write-file-atomic';
import type { Nsm } from './nsm/nsm';

export interface StartEnclaveOptions {
  readonly port?: number;
  readonly host?: string;
  /** Models to serve (default: the shipped PP-OCRv4 text recognition model). */
  readonly models?: readonly ModelConfig[];
  /** How model files are read (key release passes a reader that decrypts). */
  readonly readModelFile?: LoadOptions['readFile'];
  /** A model-release step run before the models load; its failure is the enclave's failure. */
  readonly prepareModels?: (nsm: Nsm) => Promise<LoadOptions['readFile']>;
  /** The NSM; default a DevNsm under `devCa` (or the CA stored at `devCaFile`, created if missing). */
  readonly nsm?: Nsm;
  readonly devCa?: DevCa;
  readonly devCaFile?: string;
  /** Dev only: report PCR0-2 as zero, like `nitro-cli run-enclave --debug-mode`. */
  readonly debug?: boolean;
  /** The HTTP server's timeouts and limits (EnclaveHttpOptions). */
  readonly http?: Pick<EnclaveHttpOptions, 'timeouts' | 'maxBodyBytes' | 'maxPendingBytes'>;
  readonly log?: (event: Record<string, unknown>) => void;
}

export interface RunningEnclave {
  readonly url: string;
  readonly service: EnclaveService;
  readonly manifest: EnclaveManifest;
  readonly bootDocument: Uint8Array;
  /** PEM of the dev root when the NSM is the dev one. */
  readonly devRootPem?: string;
  /** PCRs the NSM measured (hex by index), for building a measurement policy. */
  readonly pcrs: Readonly<Record<number, string>>;
  close(): Promise<void>;
}

/** Loads the dev CA from `file`, or creates it there (0600, atomically). */
export function loadOrCreateDevCa(file: string): Promise<DevCa> {
  return readOrCreate(file, {
    parse: (text) => importDevCa(JSON.parse(text) as DevCaJson),
    create: createDevCa,
    serialize: async (ca) => JSON.stringify(await exportDevCa(ca)),
  });
}

export async function startEnclave(options: StartEnclaveOptions = {}): Promise<RunningEnclave> {
  const log = options.log ?? (() => undefined);
  const configs = options.models ?? defaultModelConfigs();
  const ca = options.nsm ? undefined : (options.devCa ?? (options.devCaFile ? await loadOrCreateDevCa(options.devCaFile) : await createDevCa()));
  let nsm: Nsm;
  let pcrs: Map<number, Uint8Array>;
  if (options.nsm) {
    // A given (hardware) NSM measured the image at launch: read PCR0-2 from it.
    nsm = options.nsm;
    pcrs = new Map(await Promise.all([0, 1, 2].map(async (i) => [i, (await nsm.describePcr(i)).data] as [number, Uint8Array])));
  } else {
    // The dev image holds what ships: the sealed file where a model is sealed, else the model itself.
    pcrs = await measureDevEnclave(configs);
    nsm = await DevNsm.create({ ca: ca!, pcrs, attester: { debug: options.debug ?? false } });
  }

  let models: ModelRegistry | undefined;
  let failure: string | undefined;
  let modelStatus: ModelStatus[] = [];
  try {
    const readFile = options.prepareModels ? await options.prepareModels(nsm) : options.readModelFile;
    models = await ModelRegistry.load(configs, readFile ? { readFile } : {});
    modelStatus = configs.map((c) => ({ name: c.name, version: c.version, ready: true }));
  } catch (err) {
    failure = err instanceof Error ? err.message : String(err);
    modelStatus = configs.map((c) => ({ name: c.name, version: c.version, ready: false, error: failure! }));
    log({ level: 'error', msg: 'enclave serves no models', reason: failure });
  }
  const service = await EnclaveService.boot({ nsm, ...(models ? { models } : {}), ...(failure ? { failure } : {}), modelStatus });
  // A server that cannot start (a port in use, invalid limits) must not leave the models' worker
  // threads and the NSM open behind it.
  const { server, url } = await listenEnclaveHttp(service, {
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.host ? { host: options.host } : {}),
    ...options.http,
    log,
  }).catch(async (err: unknown) => {
    await service.close().catch(() => undefined);
    throw err;
  });
  log({ level: 'info', msg: 'enclave ready', url, boot_id: service.manifest.boot_id, status: service.health().status });
  return {
    url,
    service,
    manifest: service.manifest,
    bootDocument: service.bootDocument,
    ...(ca ? { devRootPem: ca.rootPem } : {}),
    pcrs: Object.fromEntries([...pcrs].map(([i, v]) => [i, toHex(options.debug && i <= 2 ? new Uint8Array(48) : v)])),
    close: () => closeAll(server, service),
  };
}

async function closeAll(server: Server, service: EnclaveService): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
  await service.close();
}
