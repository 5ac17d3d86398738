/**
 * readOrCreate (enclave/write-file-atomic.ts), which keeps the enclave's dev root and the dev
 * stack's keys and credentials: a missing file is made, a kept one is used, and one that cannot
 * be used is CONFIG_INVALID naming it, never a bare parse error.
 */
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readOrCreate } from '../../enclave/write-file-atomic';
import { refusalOf } from '../support/error-code';

const json = { parse: (text: string) => JSON.parse(text) as { n: number }, create: () => ({ n: 1 }), serialize: (v: { n: number }) => JSON.stringify(v), mode: 0o600 };

it('makes a missing file (mode as asked) and then uses what it holds', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'teegate-roc-')), 'sub', 'state.json');
  expect(await readOrCreate(file, json)).toEqual({ n: 1 });
  expect(statSync(file).mode & 0o777).toBe(0o600);
  writeFileSync(file, '{"n": 2}');
  expect(await readOrCreate(file, json)).toEqual({ n: 2 });
});

it('a file whose content parse refuses, or that cannot be read: CONFIG_INVALID naming it, left as it was', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'teegate-roc-'));
  const file = join(dir, 'state.json');
  writeFileSync(file, '{"n":');
  const refused = await refusalOf(() => readOrCreate(file, json));
  expect(refused.code).toBe('CONFIG_INVALID');
  expect(refused.message).toMatch(new RegExp(`^${file.replace(/[.]/g, '\\.')} cannot be used \\(.+\\): restore it, or remove it`));
  expect(readFileSync(file, 'utf8')).toBe('{"n":'); // never overwritten
  const folder = join(dir, 'a-folder.json');
  mkdirSync(folder);
  expect(await refusalOf(() => readOrCreate(folder, json))).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('EISDIR') });
});
