/** The dev enclave's measured source files: everything that runs inside the enclave, nothing else. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { toHex, utf8 } from '../../attestation/bytes';
import { measureFiles } from '../../attestation/dev/measure';
import { enclaveSourceFiles, measureDevEnclave, pcrHex, REPO_ROOT } from '../../enclave/measurement';
import type { ModelConfig } from '../../enclave/models/model-config';

test('every tracked source file of attestation/ and enclave/ is measured, including the model worker (JavaScript)', async () => {
  const files = await enclaveSourceFiles();
  expect(files).toContain('enclave/models/ort-worker.js');
  expect(files).toContain('enclave/nsm/native/nsm_ioctl.c');
  const tracked = execFileSync('git', ['ls-files', 'attestation', 'enclave'], { cwd: REPO_ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((f) => /\.(ts|js|c)$/.test(f));
  expect(tracked.length).toBeGreaterThan(50);
  for (const f of tracked) expect(files).toContain(f);
  expect(files.some((f) => f.startsWith('test/'))).toBe(false);
});

describe('what the dev image measures, on a scratch checkout', () => {
  const roots: string[] = [];
  afterAll(() => {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });

  function write(root: string, file: string, text: string): void {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), text);
  }

  /** attestation/ and enclave/ sources (ts, json, a Makefile), a file that is not measured, and a lock file. */
  function scratchRoot(): string {
    const root = mkdtempSync(join(tmpdir(), 'teegate-measure-'));
    roots.push(root);
    write(root, 'attestation/verify.ts', 'export const v = 1;\n');
    write(root, 'enclave/main.ts', 'export const m = 1;\n');
    write(root, 'enclave/models/tokens.json', '{"a":1}\n');
    write(root, 'enclave/nsm/native/Makefile', 'all:\n');
    write(root, 'enclave/notes.md', 'not part of the image\n');
    write(root, 'package-lock.json', '{"lockfileVersion":3}\n');
    return root;
  }

  const measure = async (root: string, models: readonly Pick<ModelConfig, 'path' | 'sealed'>[] = []) => pcrHex(await measureDevEnclave(models, root));

  it('puts the sources (with their paths) in PCR0 and PCR2, the lock file in PCR0 only, and the Node.js runtime in PCR1', async () => {
    const root = scratchRoot();
    const base = await measure(root);
    const runtime = await measureFiles([utf8(`node ${process.version} ${process.platform} ${process.arch}`)]);
    expect(base[1]).toBe(toHex(runtime));
    expect(new Set([base[0], base[1], base[2]]).size).toBe(3);

    const changed = async (edit: () => void) => {
      const before = await measure(root);
      edit();
      const after = await measure(root);
      return { 0: after[0] !== before[0], 1: after[1] !== before[1], 2: after[2] !== before[2] };
    };
    const sources = { 0: true, 1: false, 2: true };
    expect(await changed(() => write(root, 'enclave/main.ts', 'export const m = 2;\n'))).toEqual(sources);
    expect(await changed(() => write(root, 'enclave/models/tokens.json', '{"a":2}\n'))).toEqual(sources);
    expect(await changed(() => write(root, 'enclave/nsm/native/Makefile', 'all: x\n'))).toEqual(sources);
    expect(await changed(() => renameSync(join(root, 'enclave/main.ts'), join(root, 'enclave/main2.ts')))).toEqual(sources);
    expect(await changed(() => write(root, 'package-lock.json', '{"lockfileVersion":4}\n'))).toEqual({ 0: true, 1: false, 2: false });
    expect(await changed(() => write(root, 'enclave/notes.md', 'still not part of the image\n'))).toEqual({ 0: false, 1: false, 2: false });
  });

  it('measures a sealed model by its sealed file, which is what the image ships', async () => {
    const root = scratchRoot();
    write(root, 'models/m.onnx', 'plain model');
    write(root, 'models/m.onnx.sealed', 'sealed model');
    const model = { path: join(root, 'models/m.onnx'), sealed: { path: join(root, 'models/m.onnx.sealed') } };
    const base = await measure(root, [model]);
    write(root, 'models/m.onnx', 'another plain model');
    expect(await measure(root, [model])).toEqual(base);
    write(root, 'models/m.onnx.sealed', 'another sealed model');
    const resealed = await measure(root, [model]);
    expect([resealed[0] !== base[0], resealed[2] === base[2]]).toEqual([true, true]);
  });

  it('lists the source files in sorted order, whatever order the directory reads in', async () => {
    const root = scratchRoot();
    for (const name of ['zeta', 'alpha', 'mu', 'beta', 'omega', 'kappa', 'delta', 'sigma', 'eta', 'chi', 'psi', 'tau']) write(root, `enclave/${name}.ts`, name);
    const files = await enclaveSourceFiles(root);
    expect(files).toEqual([...files].sort());
    expect(files).toHaveLength(16);
  });
});
