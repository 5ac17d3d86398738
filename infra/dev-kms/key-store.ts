/**
 * Keys, their policies and aliases, persisted in `<dataDir>/dev-kms.json` (mode 0600, written
 * atomically: temp file + fsync + rename + fsync of the folder). Without a data folder the store
 * lives in memory only. Key material is stored in the file: this is a development KMS, the file
 * is its HSM, and it must never hold production data.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TeegateError } from '../../attestation/errors';
import { unusableStateFile, writeFileAtomicSync } from '../../enclave/write-file-atomic';
import { isRecord } from './policy';

export interface StoredKey {
  readonly keyId: string;
  readonly arn: string;
  /** Seconds since the epoch, as KMS reports CreationDate. */
  readonly creationDate: number;
  readonly description: string;
  readonly enabled: boolean;
  readonly policy: string;
  /** base64 of the 32-byte AES-256 key. */
  readonly material: string;
}

interface StoreFile {
  readonly format: 'teegate-dev-kms/1';
  readonly keys: Record<string, StoredKey>;
  readonly aliases: Record<string, string>;
}

export const STORE_FILE_NAME = 'dev-kms.json';

/**
 * The store file, checked member by member: a file that cannot be used is CONFIG_INVALID naming it
 * (a key with a wrong field would otherwise fail later, in the middle of a request).
 */
function readStoreFile(file: string): StoreFile {
  const unusable = (why: unknown): TeegateError => unusableStateFile(file, why, 'start a new dev KMS (models sealed under its keys must then be sealed again)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw unusable(err);
  }
  if (!isRecord(parsed) || parsed.format !== 'teegate-dev-kms/1') throw unusable('not a dev KMS store: format must be "teegate-dev-kms/1"');
  if (!isRecord(parsed.keys) || !isRecord(parsed.aliases)) throw unusable('keys and aliases must be objects');
  for (const [id, key] of Object.entries(parsed.keys)) {
    const ok =
      isRecord(key) && key.keyId === id && typeof key.arn === 'string' && typeof key.creationDate === 'number' && typeof key.description === 'string' &&
      typeof key.enabled === 'boolean' && typeof key.policy === 'string' && typeof key.material === 'string' && Buffer.from(key.material, 'base64').length === 32;
    if (!ok) throw unusable(`key ${JSON.stringify(id)} is not {keyId, arn, creationDate, description, enabled, policy, material of 32 bytes}`);
  }
  for (const [alias, id] of Object.entries(parsed.aliases)) {
    if (typeof id !== 'string' || !(id in parsed.keys)) throw unusable(`alias ${JSON.stringify(alias)} does not name a stored key`);
  }
  return parsed as unknown as StoreFile;
}

export class KeyStore {
  private readonly keys = new Map<string, StoredKey>();
  private readonly aliases = new Map<string, string>();
  private readonly file: string | undefined;

  constructor(dataDir?: string) {
    if (dataDir === undefined) return;
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.file = join(dataDir, STORE_FILE_NAME);
    if (!existsSync(this.file)) return;
    const parsed = readStoreFile(this.file);
    for (const [id, key] of Object.entries(parsed.keys)) this.keys.set(id, key);
    for (const [alias, id] of Object.entries(parsed.aliases)) this.aliases.set(alias, id);
  }

  get(keyId: string): StoredKey | undefined {
    return this.keys.get(keyId);
  }

  /** Key id an alias (`alias/name`) points to. */
  aliasTarget(alias: string): string | undefined {
    return this.aliases.get(alias);
  }

  listAliases(): ReadonlyArray<readonly [string, string]> {
    return [...this.aliases.entries()];
  }

  put(key: StoredKey): void {
    this.keys.set(key.keyId, key);
    this.persist();
  }

  putAlias(alias: string, keyId: string): void {
    this.aliases.set(alias, keyId);
    this.persist();
  }

  private persist(): void {
    if (this.file === undefined) return;
    const doc: StoreFile = {
      format: 'teegate-dev-kms/1',
      keys: Object.fromEntries(this.keys),
      aliases: Object.fromEntries(this.aliases),
    };
    writeFileAtomicSync(this.file, JSON.stringify(doc, null, 2) + '\n');
  }
}

