/**
 * What the dev NSM measures into PCRs, mirroring a Nitro image: PCR0 = the whole image (the
 * enclave's and the verifier's sources, the lock file and the model files), PCR1 = the "kernel"
 * part (the Node.js runtime version), PCR2 = the application part (the sources alone). Anyone
 * with the same checkout computes the same values: `teegate up` turns them into the gateway's
 * measurement policy, and a changed source file changes PCR0 and PCR2.
 */
import type { ModelConfig } from './models/model-config';
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { toHex, utf8 } from '../attestation/bytes';
import { measureImage } from '../attestation/dev/measure';

export const REPO_ROOT = join(__dirname, '..');

/** PCR0-2 as lowercase hex, the form measurement policies pin. */
export function pcrHex(pcrs: ReadonlyMap<number, Uint8Array>): Record<0 | 1 | 2, string> {
  const hex = (i: number): string => {
    const value = pcrs.get(i);
    if (value === undefined) throw new Error(`no PCR${i}`);
    return toHex(value);
  };
  return { 0: hex(0), 1: hex(1), 2: hex(2) };
}
const SOURCE_DIRS = ['attestation', 'enclave'];

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path)));
    else if (entry.isFile() && /\.(ts|js|c|json|txt)$/.test(entry.name) || entry.name === 'Makefile') out.push(path);
  }
  return out;
}

/** Source files of the enclave image, in a fixed order (sorted relative paths). */
export async function enclaveSourceFiles(root = REPO_ROOT): Promise<string[]> {
  const files = (await Promise.all(SOURCE_DIRS.map((d) => listFiles(join(root, d))))).flat();
  return files.map((f) => relative(root, f)).sort();
}

/** The measured inputs: each file contributes its path and its bytes, so renames change the PCRs. */
async function named(root: string, files: readonly string[]): Promise<Uint8Array[]> {
  const parts: Uint8Array[] = [];
  for (const f of files) parts.push(utf8(`${f}\n`), await readFile(join(root, f)));
  return parts;
}

/**
 * PCR0-2 of the dev image that ships `models`: for each, the file it loads from, which is the
 * sealed file where the model is sealed (the enclave gets its key from KMS) and the model otherwise.
 */
export async function measureDevEnclave(models: readonly Pick<ModelConfig, 'path' | 'sealed'>[] = [], root = REPO_ROOT): Promise<Map<number, Uint8Array>> {
  const sources = await named(root, await enclaveSourceFiles(root));
  const modelBytes = await Promise.all(models.map((m) => readFile(m.sealed?.path ?? m.path)));
  const lock = await readFile(join(root, 'package-lock.json'));
  return measureImage({
    image: [...sources, lock, ...modelBytes],
    kernel: [utf8(`node ${process.version} ${process.platform} ${process.arch}`)],
    application: sources,
  });
}
