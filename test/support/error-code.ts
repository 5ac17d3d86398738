/** The TeegateError code a call fails with ('no error' if it succeeds); any other error is rethrown. */
import { isTeegateError, type ErrorCode } from '../../attestation/errors';

export function errorCodeOf(fn: () => unknown): ErrorCode | 'no error' {
  try {
    fn();
  } catch (err) {
    if (isTeegateError(err)) return err.code;
    throw err;
  }
  return 'no error';
}

export async function errorCodeOfAsync(p: Promise<unknown>): Promise<ErrorCode | 'no error'> {
  try {
    await p;
  } catch (err) {
    if (isTeegateError(err)) return err.code;
    throw err;
  }
  return 'no error';
}

/** Like errorCodeOf, but any other error is reported as 'not a TeegateError' instead of rethrown. */
export function errorCodeOrKind(fn: () => unknown): ErrorCode | 'no error' | 'not a TeegateError' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return isTeegateError(err) ? err.code : 'not a TeegateError';
  }
}

export async function errorCodeOrKindAsync(p: Promise<unknown>): Promise<ErrorCode | 'no error' | 'not a TeegateError'> {
  try {
    await p;
    return 'no error';
  } catch (err) {
    return isTeegateError(err) ? err.code : 'not a TeegateError';
  }
}

/** The TeegateError `fn` throws (or its promise rejects with), as { code, message }; any other outcome fails. */
export async function refusalOf(fn: () => unknown): Promise<{ code: ErrorCode; message: string }> {
  try {
    await fn();
  } catch (err) {
    if (isTeegateError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a TeegateError, but the call succeeded');
}

/** refusalOf for a synchronous call. */
export function refusalOfSync(fn: () => unknown): { code: ErrorCode; message: string } {
  try {
    fn();
  } catch (err) {
    if (isTeegateError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a TeegateError, but the call succeeded');
}
