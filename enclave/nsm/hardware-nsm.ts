/**
 * The real NSM: every request runs the native nsm-ioctl helper (native/nsm_ioctl.c) once, which
 * performs the /dev/nsm ioctl. Framing on the helper's pipes: u32 big-endian length + CBOR, one
 * request in, one response out. A helper per request keeps the service free of native add-ons
 * (no node-gyp, no Node ABI coupling) and a fault in native code cannot take the service down;
 * the cost is one fork/exec per request (2.5 ms measured on the 2-core dev machine, helper and
 * pipes included) on calls that happen at boot and per attestation fetch.
 * The kernel driver serialises requests to the device, so concurrent helpers are safe.
 *
 * Helper exit codes → errors: 3 → NSM_REQUEST_INVALID, 4 and 7 → NSM_UNAVAILABLE, 5 and 6 →
 * NSM_FAILED, 2 → INTERNAL (we framed the request wrongly), a signal or unknown code →
 * NSM_FAILED. A helper that does not answer within `timeoutMs` is killed: NSM_FAILED.
 */
import { spawn } from 'node:child_process';
import { TeegateError, type ErrorCode } from '../../attestation/errors';
import { NSM_REQUEST_MAX_SIZE, NSM_RESPONSE_MAX_SIZE } from './nsm-protocol';
import { ProtocolNsm } from './protocol-nsm';

/** Where the enclave image installs the helper (enclave/nsm/native/Makefile `install`). */
export const DEFAULT_NSM_HELPER_PATH = '/usr/local/libexec/teegate/nsm-ioctl';
export const DEFAULT_NSM_TIMEOUT_MS = 10_000;
const STDERR_LIMIT = 2048;

export interface HardwareNsmOptions {
  /** Path of the nsm-ioctl helper (default DEFAULT_NSM_HELPER_PATH). */
  readonly helperPath?: string;
  /** Device path passed to the helper as NSM_DEVICE (default: the helper's /dev/nsm). */
  readonly devicePath?: string;
  /** Per-request limit in milliseconds (default 10 s). */
  readonly timeoutMs?: number;
}

const EXIT_CODES: Record<number, { code: ErrorCode; what: string }> = {
  2: { code: 'INTERNAL', what: 'rejected the framing of the request' },
  3: { code: 'NSM_REQUEST_INVALID', what: 'reported the request too large' },
  4: { code: 'NSM_UNAVAILABLE', what: 'cannot open the NSM device' },
  5: { code: 'NSM_FAILED', what: 'reported the ioctl failed' },
  6: { code: 'NSM_FAILED', what: 'could not write the response' },
  7: { code: 'NSM_UNAVAILABLE', what: 'was refused the NSM ioctl' },
};

function frame(request: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + request.length);
  new DataView(out.buffer).setUint32(0, request.length);
  out.set(request, 4);
  return out;
}

/** The helper's stdout is untrusted framing: exactly u32 length + that many bytes. */
export function unframeNsmResponse(out: Uint8Array): Uint8Array {
  if (out.length < 4) throw new TeegateError('NSM_RESPONSE_MALFORMED', `nsm-ioctl wrote ${out.length} bytes, less than a length prefix`);
  const len = new DataView(out.buffer, out.byteOffset, out.byteLength).getUint32(0);
  if (len === 0 || len > NSM_RESPONSE_MAX_SIZE || out.length !== 4 + len) {
    throw new TeegateError('NSM_RESPONSE_MALFORMED', `nsm-ioctl framed ${len} response bytes but wrote ${out.length - 4}`);
  }
  return out.slice(4);
}

export class HardwareNsm extends ProtocolNsm {
  readonly kind = 'hardware' as const;
  private readonly helperPath: string;
  private readonly devicePath: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: HardwareNsmOptions = {}) {
    super();
    this.helperPath = options.helperPath ?? DEFAULT_NSM_HELPER_PATH;
    this.devicePath = options.devicePath;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_NSM_TIMEOUT_MS;
    if (!Number.isFinite(this.timeoutMs) || this.timeoutMs <= 0) {
      throw new TeegateError('NSM_REQUEST_INVALID', `timeoutMs must be a positive number, got ${this.timeoutMs}`);
    }
  }

  protected transport(request: Uint8Array): Promise<Uint8Array> {
    if (request.length > NSM_REQUEST_MAX_SIZE) {
      return Promise.reject(new TeegateError('NSM_REQUEST_INVALID', `request of ${request.length} bytes exceeds NSM_REQUEST_MAX_SIZE`));
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      const env: NodeJS.ProcessEnv = this.devicePath === undefined ? {} : { NSM_DEVICE: this.devicePath };
      const child = spawn(this.helperPath, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let outLen = 0;
      let err = '';
      let settled = false;
      let failure: TeegateError | undefined;

      const finish = (error: TeegateError | undefined, value?: Uint8Array): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve(value!);
      };
      const abort = (error: TeegateError): void => {
        failure ??= error;
        child.kill('SIGKILL');
      };

      const timer = setTimeout(
        () => abort(new TeegateError('NSM_FAILED', `nsm-ioctl did not answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );

      child.on('error', (e: NodeJS.ErrnoException) => {
        // spawn failed (no such helper, not executable): nothing ran.
        const code: ErrorCode = e.code === 'ENOENT' || e.code === 'EACCES' ? 'NSM_UNAVAILABLE' : 'NSM_FAILED';
        finish(new TeegateError(code, `cannot run the NSM helper ${this.helperPath}: ${e.message}`, { cause: e }));
      });
      child.stdout.on('data', (chunk: Buffer) => {
        outLen += chunk.length;
        if (outLen > 4 + NSM_RESPONSE_MAX_SIZE) {
          abort(new TeegateError('NSM_RESPONSE_MALFORMED', `nsm-ioctl wrote more than ${4 + NSM_RESPONSE_MAX_SIZE} bytes`));
          return;
        }
        out.push(chunk);
      });
      child.stderr.on('data', (chunk: Buffer) => {
        if (err.length < STDERR_LIMIT) err += chunk.toString('utf8').slice(0, STDERR_LIMIT - err.length);
      });
      // The helper may exit before reading (e.g. it cannot run): its exit status says why.
      child.stdin.on('error', () => undefined);
      child.stdin.end(frame(request));

      child.on('close', (status: number | null, signal: NodeJS.Signals | null) => {
        if (failure) return finish(failure);
        const detail = err.trim() || '(no message)';
        if (status === 0) {
          try {
            return finish(undefined, unframeNsmResponse(new Uint8Array(Buffer.concat(out))));
          } catch (e) {
            return finish(e as TeegateError);
          }
        }
        const known = status === null ? undefined : EXIT_CODES[status];
        if (known) return finish(new TeegateError(known.code, `nsm-ioctl ${known.what}: ${detail}`));
        const how = signal ? `was killed by ${signal}` : `exited with status ${status}`;
        return finish(new TeegateError('NSM_FAILED', `nsm-ioctl ${how}: ${detail}`));
      });
    });
  }
}
