/**
 * Reads a request body as raw bytes, up to a limit, for relaying: the gateway never parses it.
 * Only `application/json` (plain) and `application/jose` (sealed) bodies without content coding are
 * accepted. A Content-Length over the limit is refused before reading; a body that grows past it is
 * refused as soon as it does. A client that sent `Expect: 100-continue` is asked for the body only
 * once those checks passed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TeegateError } from '../../attestation/errors';
import { continueIfExpected } from '../../attestation/http-error-answer';

export type BodyMode = 'plain' | 'sealed';

export interface RawBody {
  readonly mode: BodyMode;
  readonly contentType: string;
  readonly bytes: Buffer;
}

export function bodyMode(contentType: string | undefined): BodyMode {
  const essence = (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (essence === 'application/json') return 'plain';
  if (essence === 'application/jose') return 'sealed';
  throw new TeegateError('MEDIA_TYPE_UNSUPPORTED', `Content-Type must be application/json (plain) or application/jose (sealed), got ${JSON.stringify(essence || 'none')}`);
}

export function readRawBody(req: IncomingMessage, res: ServerResponse, limit: number): Promise<RawBody> {
  return new Promise<RawBody>((resolve, reject) => {
    let mode: BodyMode;
    try {
      mode = bodyMode(req.headers['content-type']);
      const coding = req.headers['content-encoding'];
      if (coding !== undefined && coding.toLowerCase() !== 'identity') {
        throw new TeegateError('MEDIA_TYPE_UNSUPPORTED', `Content-Encoding ${JSON.stringify(coding)} is not supported`);
      }
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > limit) {
        throw new TeegateError('BODY_TOO_LARGE', `the body is ${declared} bytes, the limit is ${limit}`);
      }
    } catch (err) {
      reject(err);
      return;
    }
    continueIfExpected(req, res);
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const fail = (err: TeegateError) => {
      if (done) return;
      done = true;
      req.removeListener('data', onData);
      req.resume();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return fail(new TeegateError('BODY_TOO_LARGE', `the body exceeds the limit of ${limit} bytes`));
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      if (done) return;
      done = true;
      resolve({ mode, contentType: req.headers['content-type']!, bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
    });
    req.once('error', () => fail(new TeegateError('REQUEST_INVALID', 'the request body could not be read')));
    req.once('aborted', () => fail(new TeegateError('REQUEST_INVALID', 'the client aborted the request')));
  });
}
