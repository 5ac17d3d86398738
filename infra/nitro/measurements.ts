/**
 * Turns what `nitro-cli build-enclave` (or `nitro-cli describe-eif`) prints into the measurement
 * policy file (docs/policy.md) that the gateway, the clients and the KMS key-policy generator read:
 *
 *   {"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": "<96 hex>", "PCR1": "...", "PCR2": "...", "PCR8"?: "..."}}
 *
 *   node bin/run-ts infra/nitro/measurements.ts --build-output build/eif-build.json
 *     --out build/measurement-policy.json [--name teegate-enclave] [--source "git abc123"] [--max-age 300]
 *
 * Exit: 0 written, 1 input refused (CODE: message), 2 usage or I/O error.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { TeegateError, isTeegateError } from '../../attestation/errors';
import { makePolicyFile, parsePolicyFile, type PolicyFile } from '../../attestation/policy-file';

/** PCRs nitro-cli reports: 0 image, 1 kernel and boot ramdisk, 2 application, 8 signing certificate (signed EIFs). */
const REPORTED = [0, 1, 2, 8] as const;
const REQUIRED = [0, 1, 2] as const;

function refuse(message: string): never {
  throw new TeegateError('KEY_POLICY_INPUT_INVALID', `nitro-cli output: ${message}`);
}

export interface BuildInfo {
  readonly name?: string;
  readonly source?: string;
  /** ISO 8601; default now. */
  readonly builtAt?: string;
  readonly maxAgeSeconds?: number;
}

/** Reads the PCRs from nitro-cli's JSON (parsed) and makes a production policy file (never allowDebug). */
export function policyFromBuildOutput(output: unknown, info: BuildInfo = {}): PolicyFile {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(output)) refuse('expected a JSON object');
  const m = isObject(output.Measurements) ? output.Measurements : output;
  if (typeof m.HashAlgorithm === 'string' && !m.HashAlgorithm.startsWith('Sha384')) refuse(`hash algorithm ${m.HashAlgorithm} is not SHA-384`);
  const pcrs: Record<number, string> = {};
  for (const n of REPORTED) {
    const value = m[`PCR${n}`];
    if (value === undefined && !(REQUIRED as readonly number[]).includes(n)) continue;
    if (typeof value !== 'string' || !/^[0-9a-fA-F]{96}$/.test(value)) refuse(`PCR${n} must be 96 hex digits (SHA-384)`);
    if (/^0+$/.test(value)) refuse(`PCR${n} is all zero`);
    pcrs[n] = value.toLowerCase();
  }
  const file = makePolicyFile(pcrs, {
    allowDebug: false,
    ...(info.maxAgeSeconds !== undefined ? { maxAgeSeconds: info.maxAgeSeconds } : {}),
    image: {
      name: info.name ?? 'teegate-enclave',
      builtAt: info.builtAt ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      ...(info.source !== undefined ? { source: info.source } : {}),
    },
  });
  parsePolicyFile(file); // the one format's own checks
  return file;
}

const USAGE = 'usage: measurements --build-output FILE --out FILE [--name NAME] [--source TEXT] [--max-age SECONDS]\n';

export function main(argv: readonly string[]): number {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        'build-output': { type: 'string' },
        out: { type: 'string' },
        name: { type: 'string' },
        source: { type: 'string' },
        'max-age': { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`measurements: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values['build-output'] === undefined || values.out === undefined) {
    process.stderr.write(`measurements: --build-output and --out are required\n${USAGE}`);
    return 2;
  }
  const maxAge = values['max-age'];
  if (maxAge !== undefined && !/^\d+$/.test(maxAge)) {
    process.stderr.write('measurements: --max-age takes whole seconds\n');
    return 2;
  }
  try {
    const text = readFileSync(values['build-output'], 'utf8');
    let output: unknown;
    try {
      output = JSON.parse(text) as unknown;
    } catch {
      refuse(`${values['build-output']} is not JSON`);
    }
    const file = policyFromBuildOutput(output, {
      ...(values.name !== undefined ? { name: values.name } : {}),
      ...(values.source !== undefined ? { source: values.source } : {}),
      ...(maxAge !== undefined ? { maxAgeSeconds: Number(maxAge) } : {}),
    });
    writeFileSync(values.out, `${JSON.stringify(file, null, 2)}\n`);
    process.stdout.write(`PCR0 ${file.pcrs['0']}\nwrote ${values.out}\n`);
    return 0;
  } catch (err) {
    if (isTeegateError(err)) {
      process.stderr.write(`measurements: ${err.code}: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`measurements: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
}

if (require.main === module || (process.argv[1] !== undefined && resolve(process.argv[1]) === __filename)) {
  process.exitCode = main(process.argv.slice(2));
}
