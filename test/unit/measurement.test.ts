/** The dev enclave's measured source files: everything that runs inside the enclave, nothing else. */
import { execFileSync } from 'node:child_process';
import { enclaveSourceFiles, REPO_ROOT } from '../../enclave/measurement';

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
