/**
 * Issue 7 acceptance: the client SDK bundles for browsers. esbuild (JS API, platform=browser)
 * bundles attestation/client/index.ts; a resolver plugin records every import of a Node built-in
 * (`node:*` or a bare built-in name such as `fs`, `crypto`, `buffer`) and the test fails if any is
 * pulled in. The bundle then runs in a fresh V8 context holding only browser globals (no require,
 * process or Buffer) and exposes the SDK. A control entry that does import a built-in shows the
 * check can fail.
 */
import { isNodeBuiltin } from '../../gateway/ui/build';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
import { runInNewContext } from 'node:vm';
import { build, type Plugin } from 'esbuild';

jest.setTimeout(60_000);

const ROOT = join(__dirname, '../..');

function builtinRecorder(found: string[]): Plugin {
  return {
    name: 'node-builtin-recorder',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (isNodeBuiltin(args.path)) {
          found.push(`${args.path} (from ${args.importer.replace(`${ROOT}/`, '')})`);
          return { path: args.path, external: true };
        }
        return undefined;
      });
    },
  };
}

async function bundle(entry: { file: string } | { contents: string }) {
  const found: string[] = [];
  const result = await build({
    ...('file' in entry ? { entryPoints: [join(ROOT, entry.file)] } : { stdin: { contents: entry.contents, resolveDir: join(ROOT, 'attestation/client'), loader: 'ts' } }),
    bundle: true,
    platform: 'browser',
    format: 'iife',
    globalName: 'teegate',
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [builtinRecorder(found)],
  });
  return { found, result, code: result.outputFiles[0]!.text };
}

describe('client SDK browser bundle', () => {
  let built: Awaited<ReturnType<typeof bundle>>;

  beforeAll(async () => {
    built = await bundle({ file: 'attestation/client/index.ts' });
  });

  it('builds with esbuild --platform=browser and pulls in no Node built-in', () => {
    expect(built.result.errors).toEqual([]);
    expect(built.found).toEqual([]);
    const inputs = Object.keys(built.result.metafile!.inputs);
    expect(inputs).toContain('attestation/client/index.ts');
    // Only our browser-safe verifier and its two runtime dependencies end up in the bundle.
    const external = [...new Set(inputs.filter((p) => p.startsWith('node_modules/')).map((p) => p.split('/')[1]))].sort();
    expect(external).toEqual(['canonicalize', 'jose']);
    expect(inputs.filter((p) => !p.startsWith('node_modules/') && !p.startsWith('attestation/'))).toEqual([]);
  });

  it('runs in a context with only browser globals and exposes connect, TeegateClient and verifyReceiptOffline', () => {
    const sandbox: Record<string, unknown> = {
      crypto: webcrypto,
      TextEncoder,
      TextDecoder,
      URL,
      AbortSignal,
      Headers,
      fetch: () => Promise.reject(new Error('no network in this test')),
      atob,
      btoa,
      console,
      setTimeout,
      clearTimeout,
    };
    sandbox.globalThis = sandbox;
    sandbox.self = sandbox;
    runInNewContext(`${built.code}\nglobalThis.sdk = teegate;`, sandbox);
    const sdk = sandbox.sdk as Record<string, unknown>;
    expect(typeof sdk.connect).toBe('function');
    expect(typeof sdk.TeegateClient).toBe('function');
    expect(typeof sdk.verifyReceiptOffline).toBe('function');
    expect(typeof sdk.parsePolicyFile).toBe('function');
    expect(sandbox.require).toBeUndefined();
    expect(sandbox.process).toBeUndefined();
    expect(sandbox.Buffer).toBeUndefined();
  });

  it('would catch an import of a Node built-in (control)', async () => {
    const control = await bundle({ contents: "import { createHash } from 'node:crypto';\nimport { readFileSync } from 'fs';\nexport { createHash, readFileSync };\nexport * from './index';\n" });
    expect(control.found.map((f) => f.split(' ')[0])).toEqual(['node:crypto', 'fs']);
  });
});
