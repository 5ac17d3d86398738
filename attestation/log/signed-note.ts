/**
 * C2SP signed-note (https://c2sp.org/signed-note) with Ed25519 signatures (type 0x01), WebCrypto.
 *
 *   <text ending in \n>
 *   <blank line>
 *   — <key name> base64(uint32 key ID || signature)\n   (one or more)
 *
 * key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4], big-endian.
 * Verifier key string: `<name>+<8 hex key ID>+<base64(0x01 || public key)>`.
 * Signer key string (golang.org/x/mod/sumdb/note): `PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 || seed)>`.
 *
 * The whole note is attacker-controlled. Malformed notes throw LOG_CHECKPOINT_MALFORMED; a note
 * without a valid signature from a trusted key, or with a bad one from a trusted key, throws
 * LOG_SIGNATURE_INVALID. Malformed keys given by the caller (configuration) throw POLICY_INVALID.
 */
import { bufferSource, bytesEqual, concatBytes, fromBase64, fromUtf8, isWellFormedText, randomBytes, sha256, toBase64, utf8, webcrypto } from '../bytes';
import { TeegateError } from '../errors';

export const MAX_NOTE_BYTES = 1024 * 1024;
export const MAX_NOTE_SIGNATURES = 100;
export const ED25519_SIGNATURE_TYPE = 0x01;

export interface NoteSignature {
  /** Key name from the signature line. */
  readonly name: string;
  /** uint32 key ID (first four bytes of the signature blob, big-endian). */
  readonly keyId: number;
  /** The signature proper (the blob without the key ID). */
  readonly signature: Uint8Array;
}

export interface Note {
  /** The signed text, including its final newline. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

export interface VerifiedNote extends Note {
  /** Signatures that matched a trusted key and verified (at least one). */
  readonly verified: readonly NoteSignature[];
}

export interface NoteVerifierKey {
  readonly name: string;
  readonly keyId: number;
  /** 32-byte Ed25519 public key (RFC 8032 encoding). */
  readonly publicKey: Uint8Array;
}

export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

const EM_DASH_PREFIX = '\u2014 ';
const CONTROL = /[\u0000-\u0009\u000b-\u001f]/;
const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// PKCS#8 PrivateKeyInfo prefix for an Ed25519 seed (RFC 8410 section 7).
const PKCS8_ED25519_PREFIX = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

function malformed(message: string): TeegateError {
  return new TeegateError('LOG_CHECKPOINT_MALFORMED', message);
}

function badKey(message: string): TeegateError {
  return new TeegateError('POLICY_INVALID', message);
}

/** Key names are non-empty and contain no Unicode spaces and no '+'. */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name) && !CONTROL.test(name) && isWellFormedText(name);
}

/** Strict standard base64 (RFC 4648 section 4): padding required, canonical trailing bits. */
function strictBase64(text: string): Uint8Array | undefined {
  if (!STRICT_BASE64.test(text)) return undefined;
  try {
    return fromBase64(text);
  } catch {
    return undefined;
  }
}

function uint32(bytes: Uint8Array): number {
  return ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
}

function uint32Bytes(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** key ID = SHA-256(name || 0x0A || 0x01 || publicKey)[:4] as a big-endian uint32. */
export async function ed25519KeyId(name: string, publicKey: Uint8Array): Promise<number> {
  const digest = await sha256(concatBytes(utf8(name), new Uint8Array([0x0a, ED25519_SIGNATURE_TYPE]), publicKey));
  return uint32(digest);
}

// ---------------------------------------------------------------------------------------------
// Note syntax

function noteString(message: string | Uint8Array): string {
  if (message instanceof Uint8Array) {
    if (message.length > MAX_NOTE_BYTES) throw malformed(`note exceeds ${MAX_NOTE_BYTES} bytes`);
    try {
      return fromUtf8(message);
    } catch {
      throw malformed('note is not valid UTF-8');
    }
  }
  if (typeof message !== 'string') throw malformed('note is not a string');
  if (message.length > MAX_NOTE_BYTES) throw malformed(`note exceeds ${MAX_NOTE_BYTES} bytes`);
  if (!isWellFormedText(message)) throw malformed('note is not valid Unicode');
  if (utf8(message).length > MAX_NOTE_BYTES) throw malformed(`note exceeds ${MAX_NOTE_BYTES} bytes`);
  return message;
}

/** Checks the text part of a note: ends in a newline, no control characters but newline. */
function checkText(text: string): void {
  if (text.length === 0 || !text.endsWith('\n')) throw malformed('note text does not end with a newline');
  if (CONTROL.test(text)) throw malformed('note contains a control character');
  if (!isWellFormedText(text)) throw malformed('note text is not valid Unicode');
}

/** Splits a signed note into text and signature lines (syntax only; nothing is verified). */
export function parseNote(message: string | Uint8Array): Note {
  const s = noteString(message);
  if (CONTROL.test(s)) throw malformed('note contains a control character');
  if (!s.endsWith('\n')) throw malformed('note does not end with a newline');
  const split = s.lastIndexOf('\n\n');
  if (split < 0) throw malformed('note has no blank line before its signatures');
  const text = s.slice(0, split + 1);
  const block = s.slice(split + 2);
  if (block.length === 0) throw malformed('note has no signature lines');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) throw malformed(`note has more than ${MAX_NOTE_SIGNATURES} signatures`);
  const signatures = lines.map(parseSignatureLine);
  return { text, signatures };
}

function parseSignatureLine(line: string): NoteSignature {
  if (!line.startsWith(EM_DASH_PREFIX)) throw malformed('signature line does not start with an em dash and a space');
  const rest = line.slice(EM_DASH_PREFIX.length);
  const space = rest.indexOf(' ');
  if (space < 0) throw malformed('signature line has no signature');
  const name = rest.slice(0, space);
  if (!isValidKeyName(name)) throw malformed('signature line has an invalid key name');
  const blob = strictBase64(rest.slice(space + 1));
  if (!blob) throw malformed('signature is not canonical base64');
  if (blob.length < 5) throw malformed('signature is shorter than a key ID and one byte');
  return { name, keyId: uint32(blob), signature: blob.slice(4) };
}

/** The wire form: text, blank line, one `— name base64(keyID || sig)` line per signature. */
export function formatNote(note: Note): string {
  checkText(note.text);
  if (note.signatures.length === 0 || note.signatures.length > MAX_NOTE_SIGNATURES) {
    throw malformed(`a note needs 1 to ${MAX_NOTE_SIGNATURES} signatures`);
  }
  let out = `${note.text}\n`;
  for (const sig of note.signatures) {
    if (!isValidKeyName(sig.name)) throw malformed('invalid key name');
    if (!Number.isInteger(sig.keyId) || sig.keyId < 0 || sig.keyId > 0xffffffff) throw malformed('invalid key ID');
    if (sig.signature.length === 0) throw malformed('empty signature');
    out += `${EM_DASH_PREFIX}${sig.name} ${toBase64(concatBytes(uint32Bytes(sig.keyId), sig.signature))}\n`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Keys

/** Parses `<name>+<hex key ID>+<base64(0x01 || public key)>` and checks the key ID. */
export async function parseVerifierKey(vkey: string): Promise<NoteVerifierKey> {
  const { name, keyId, key } = splitKeyString(vkey);
  const publicKey = key.slice(1);
  const computed = await ed25519KeyId(name, publicKey);
  if (computed !== keyId) throw badKey(`verifier key ID ${hex8(keyId)} does not match the key (${hex8(computed)})`);
  return { name, keyId, publicKey };
}

export async function formatVerifierKey(name: string, publicKey: Uint8Array): Promise<string> {
  if (!isValidKeyName(name)) throw badKey('invalid key name');
  if (publicKey.length !== 32) throw badKey('an Ed25519 public key is 32 bytes');
  const keyId = await ed25519KeyId(name, publicKey);
  return `${name}+${hex8(keyId)}+${toBase64(concatBytes(new Uint8Array([ED25519_SIGNATURE_TYPE]), publicKey))}`;
}

function splitKeyString(text: string): { name: string; keyId: number; key: Uint8Array } {
  if (typeof text !== 'string') throw badKey('key is not a string');
  const first = text.indexOf('+');
  const second = first < 0 ? -1 : text.indexOf('+', first + 1);
  if (first < 0 || second < 0) throw badKey('key string is not name+keyid+key');
  const name = text.slice(0, first);
  const id = text.slice(first + 1, second);
  if (!isValidKeyName(name)) throw badKey('invalid key name');
  if (!/^[0-9a-f]{8}$/.test(id)) throw badKey('key ID is not 8 lowercase hex digits');
  const key = strictBase64(text.slice(second + 1));
  if (!key) throw badKey('key is not canonical base64');
  if (key.length !== 33 || key[0] !== ED25519_SIGNATURE_TYPE) throw badKey('key is not an Ed25519 (type 0x01) key');
  return { name, keyId: parseInt(id, 16), key };
}

async function importSeed(seed: Uint8Array): Promise<{ privateKey: CryptoKey; publicKey: Uint8Array }> {
  if (seed.length !== 32) throw badKey('an Ed25519 seed is 32 bytes');
  const privateKey = await webcrypto().importKey('pkcs8', bufferSource(concatBytes(PKCS8_ED25519_PREFIX, seed)), { name: 'Ed25519' }, true, ['sign']);
  const jwk = await webcrypto().exportKey('jwk', privateKey);
  if (typeof jwk.x !== 'string') throw new TeegateError('INTERNAL', 'WebCrypto did not return the Ed25519 public key');
  return { privateKey, publicKey: fromBase64(jwk.x) };
}

/** A signer from a 32-byte Ed25519 seed (RFC 8032 private key). */
export async function ed25519SignerFromSeed(name: string, seed: Uint8Array): Promise<NoteSigner & { readonly publicKey: Uint8Array }> {
  if (!isValidKeyName(name)) throw badKey('invalid key name');
  const { privateKey, publicKey } = await importSeed(seed);
  const keyId = await ed25519KeyId(name, publicKey);
  return {
    name,
    keyId,
    publicKey,
    sign: async (message) => new Uint8Array(await webcrypto().sign({ name: 'Ed25519' }, privateKey, bufferSource(message))),
  };
}

/** Parses a `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>` string (Go note format). */
export async function parseSignerKey(skey: string): Promise<NoteSigner & { readonly publicKey: Uint8Array }> {
  if (typeof skey !== 'string' || !skey.startsWith('PRIVATE+KEY+')) throw badKey('signer key does not start with PRIVATE+KEY+');
  const { name, keyId, key } = splitKeyString(skey.slice('PRIVATE+KEY+'.length));
  const signer = await ed25519SignerFromSeed(name, key.slice(1));
  if (signer.keyId !== keyId) throw badKey(`signer key ID ${hex8(keyId)} does not match the key`);
  return signer;
}

/** A fresh Ed25519 key pair as signer and verifier key strings (keep the signer key secret). */
export async function generateNoteKey(name: string): Promise<{ signerKey: string; verifierKey: string }> {
  const seed = randomBytes(32);
  const signer = await ed25519SignerFromSeed(name, seed);
  const signerKey = `PRIVATE+KEY+${name}+${hex8(signer.keyId)}+${toBase64(concatBytes(new Uint8Array([ED25519_SIGNATURE_TYPE]), seed))}`;
  seed.fill(0);
  return { signerKey, verifierKey: await formatVerifierKey(name, signer.publicKey) };
}

// ---------------------------------------------------------------------------------------------
// Sign and verify

/** Signs `text` (which must end with a newline) with each signer and returns the note. */
export async function signNote(text: string, signers: readonly NoteSigner[]): Promise<string> {
  checkText(text);
  const message = utf8(text);
  if (message.length > MAX_NOTE_BYTES) throw malformed(`note exceeds ${MAX_NOTE_BYTES} bytes`);
  const signatures: NoteSignature[] = [];
  for (const signer of signers) {
    signatures.push({ name: signer.name, keyId: signer.keyId, signature: await signer.sign(message) });
  }
  return formatNote({ text, signatures });
}

async function ed25519Verify(publicKey: Uint8Array, signature: Uint8Array, message: Uint8Array): Promise<boolean> {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    const key = await webcrypto().importKey('raw', bufferSource(publicKey), { name: 'Ed25519' }, false, ['verify']);
    return await webcrypto().verify({ name: 'Ed25519' }, key, bufferSource(signature), bufferSource(message));
  } catch {
    return false;
  }
}

/**
 * Verifies a signed note against trusted keys. Signatures whose (name, key ID) match no trusted
 * key are ignored; one from a trusted key that fails rejects the whole note; at least one must
 * verify.
 */
export async function verifyNote(message: string | Uint8Array, keys: readonly NoteVerifierKey[]): Promise<VerifiedNote> {
  const note = parseNote(message);
  const signed = utf8(note.text);
  const verified: NoteSignature[] = [];
  for (const sig of note.signatures) {
    const matches = keys.filter((k) => k.name === sig.name && k.keyId === sig.keyId);
    const key = matches[0];
    if (!key) continue;
    if (matches.some((k) => !bytesEqual(k.publicKey, key.publicKey))) {
      throw badKey(`ambiguous trusted key ${keyLabel(sig)}`);
    }
    if (!(await ed25519Verify(key.publicKey, sig.signature, signed))) {
      throw new TeegateError('LOG_SIGNATURE_INVALID', `invalid signature for key ${keyLabel(sig)}`);
    }
    verified.push(sig);
  }
  if (verified.length === 0) {
    const names = keys.map(keyLabel).join(', ') || 'none';
    throw new TeegateError('LOG_SIGNATURE_INVALID', `note has no signature from a trusted key (trusted: ${names})`);
  }
  return { ...note, verified };
}

/** For logs and messages: `<name>+<hex key ID>`. */
export function keyLabel(key: { name: string; keyId: number }): string {
  return `${key.name}+${hex8(key.keyId)}`;
}
