import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_REGISTRY, TeegateError, isErrorCode, type ErrorCode } from '../../attestation/errors';

/** docs/errors.md and attestation/errors.ts must list the same codes with the same status and action. */
function documentedCodes(): Map<string, { status: number; action: string }> {
  const text = readFileSync(join(__dirname, '../../docs/errors.md'), 'utf8');
  const rows = new Map<string, { status: number; action: string }>();
  for (const line of text.split('\n')) {
    const m = /^\| `([A-Z0-9_]+)` \| (\d{3}) \| (fix|retry|stop) \| .+ \|$/.exec(line);
    if (m) {
      expect(rows.has(m[1]!)).toBe(false);
      rows.set(m[1]!, { status: Number(m[2]), action: m[3]! });
    }
  }
  return rows;
}

describe('error registry and docs/errors.md', () => {
  const docs = documentedCodes();

  it('documents every registered code with its status and action', () => {
    for (const [code, spec] of Object.entries(ERROR_REGISTRY)) {
      expect({ code, ...docs.get(code) }).toEqual({ code, status: spec.status, action: spec.action });
    }
  });

  it('registers every documented code', () => {
    for (const code of docs.keys()) expect(isErrorCode(code)).toBe(true);
  });

  it('carries status and action on the error and serialises to {code, message}', () => {
    const code: ErrorCode = 'PCR_MISMATCH';
    const err = new TeegateError(code, 'PCR0 differs');
    expect(err.status).toBe(400);
    expect(err.action).toBe('stop');
    expect(JSON.parse(JSON.stringify(err))).toEqual({ code: 'PCR_MISMATCH', message: 'PCR0 differs' });
  });
});
