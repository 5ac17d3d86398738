/**
 * The folders import only what ../shared/ARCHITECTURE.md allows: `attestation/` nothing of ours
 * (it is the verifier library that runs in browsers too), `enclave/` and `gateway/` only
 * `attestation/` (they talk over the wire only, never through each other's code), `infra/`
 * `attestation/` and `enclave/`. `bin/` and `test/` may import everything. Checked on the source
 * text: every relative `import`/`require`/`export … from` of every TypeScript and JavaScript file.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const REPO = resolve(__dirname, '../..');
const FOLDERS = ['attestation', 'enclave', 'gateway', 'infra'] as const;
type Folder = (typeof FOLDERS)[number];
const ALLOWED: Record<Folder, readonly Folder[]> = {
  attestation: [],
  enclave: ['attestation'],
  gateway: ['attestation'],
  infra: ['attestation', 'enclave'],
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'static' ? [] : sources(path);
    return /\.(ts|js|cjs|mjs)$/.test(e.name) ? [path] : [];
  });
}

/** The top-level folders of the repository that `file`'s relative imports reach. */
function reached(file: string): { specifier: string; folder: string }[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) => m[1]!);
  return specifiers.map((specifier) => ({ specifier, folder: relative(REPO, resolve(dirname(file), specifier)).split(sep)[0]! }));
}

describe.each(FOLDERS)('%s/', (folder) => {
  it(`imports only ${ALLOWED[folder].length ? ALLOWED[folder].map((f) => `${f}/`).join(' and ') : 'nothing of ours'} (and itself)`, () => {
    const files = sources(join(REPO, folder));
    expect(files.length).toBeGreaterThan(0);
    const wrong = files.flatMap((file) =>
      reached(file)
        .filter(({ folder: to }) => to !== folder && !ALLOWED[folder].includes(to as Folder))
        .map(({ specifier }) => `${relative(REPO, file)} imports ${specifier}`),
    );
    expect(wrong).toEqual([]);
  });
});

it('finds the imports it checks (the scanner itself)', () => {
  const found = reached(join(REPO, 'enclave', 'http-server.ts')).map((r) => r.folder);
  expect(found).toContain('attestation');
  expect(found).toContain('enclave');
});
