/**
 * The dev KMS HTTP front: AWS JSON 1.1 (POST /, Content-Type application/x-amz-json-1.1,
 * X-Amz-Target TrentService.<Operation>), SigV4 on every request, bounded bodies, errors as
 * `{"__type": "<Exception>", "message": "..."}` with the model's HTTP status and an
 * x-amzn-RequestId on every answer.
 */
import { randomUUID } from 'node:crypto';
import { fromUtf8 } from '../../attestation/bytes';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { CRYPTO_OPERATIONS } from './crypto-operations';
import { KEY_OPERATIONS } from './key-operations';
import { KmsError } from './kms-error';
import type { KeyStore } from './key-store';
import type { Operation, OperationContext } from './operation-context';
import type { KeyPolicy } from './policy';
import type { RecipientEncryptor, VerifyRecipientDocument } from './recipient';
import { requireBodyObject } from './request-fields';
import { verifySigV4, type DevKmsCredential } from './sigv4-verify';

export const JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';
export const TARGET_PREFIX = 'TrentService.';
export const DEFAULT_MAX_BODY_BYTES = 256 * 1024;

export const OPERATIONS: Readonly<Record<string, Operation>> = { ...KEY_OPERATIONS, ...CRYPTO_OPERATIONS };

export interface DevKmsHandlerConfig {
  readonly region: string;
  readonly accountId: string;
  readonly credentials: ReadonlyMap<string, DevKmsCredential>;
  readonly store: KeyStore;
  readonly verifyRecipientDocument: VerifyRecipientDocument | undefined;
  readonly encryptForRecipient: RecipientEncryptor;
  readonly generateRandomPolicy: KeyPolicy | undefined;
  readonly maxBodyBytes?: number;
  /** Clock for SigV4 (ms since the epoch). */
  readonly now?: () => number;
  /** Where unexpected internal failures are reported. */
  readonly onInternalError?: (err: unknown) => void;
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > limit) return reject(new BodyTooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

function rawHeaderPairs(req: IncomingMessage): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) out.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
  return out;
}

function send(res: ServerResponse, requestId: string, status: number, body: unknown, close = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': JSON_CONTENT_TYPE,
    'Content-Length': Buffer.byteLength(text),
    'x-amzn-RequestId': requestId,
    ...(close ? { Connection: 'close' } : {}),
  });
  res.end(text);
}

async function dispatch(req: IncomingMessage, config: DevKmsHandlerConfig): Promise<unknown> {
  if (req.method !== 'POST' || (req.url ?? '/').split('?')[0] !== '/') {
    throw new KmsError('UnknownOperationException', 'The dev KMS answers POST / only.');
  }
  const body = await readBody(req, config.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
  const credential = verifySigV4(
    { method: req.method, target: req.url ?? '/', headers: rawHeaderPairs(req), body },
    { credentials: config.credentials, region: config.region, service: 'kms', now: (config.now ?? Date.now)() },
  );
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (contentType !== JSON_CONTENT_TYPE) {
    throw new KmsError('SerializationException', `Content-Type must be ${JSON_CONTENT_TYPE}.`);
  }
  const target = req.headers['x-amz-target'];
  const name = typeof target === 'string' && target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : undefined;
  const operation = name !== undefined && Object.prototype.hasOwnProperty.call(OPERATIONS, name) ? OPERATIONS[name] : undefined;
  if (operation === undefined) throw new KmsError('UnknownOperationException', `Unknown operation: ${String(target)}`);
  let parsed: unknown = {};
  if (body.length > 0) {
    try {
      parsed = JSON.parse(fromUtf8(body)); // strict: a byte that is not UTF-8 is refused, not replaced
    } catch {
      throw new KmsError('SerializationException', 'The request body is not valid JSON.');
    }
  }
  const ctx: OperationContext = {
    store: config.store,
    region: config.region,
    accountId: config.accountId,
    principalArn: credential.principalArn ?? `arn:aws:iam::${config.accountId}:user/${credential.accessKeyId}`,
    verifyRecipientDocument: config.verifyRecipientDocument,
    encryptForRecipient: config.encryptForRecipient,
    generateRandomPolicy: config.generateRandomPolicy,
  };
  return operation(requireBodyObject(parsed), ctx);
}

export function createDevKmsHandler(config: DevKmsHandlerConfig): RequestListener {
  return (req, res) => {
    const requestId = randomUUID();
    dispatch(req, config).then(
      (result) => send(res, requestId, 200, result),
      (err: unknown) => {
        if (err instanceof BodyTooLarge) {
          const limit = config.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
          const tooLarge = new KmsError('RequestEntityTooLargeException', `The request body exceeds ${limit} bytes.`);
          send(res, requestId, tooLarge.status, tooLarge.toWire(), true);
          res.on('finish', () => req.destroy());
          return;
        }
        if (err instanceof KmsError) {
          send(res, requestId, err.status, err.toWire());
          return;
        }
        config.onInternalError?.(err);
        send(res, requestId, 500, new KmsError('KMSInternalException', 'An internal error occurred in the dev KMS.').toWire());
      },
    );
  };
}
