/**
 * Typed reads of JSON 1.1 request members. The body is attacker-controlled: wrong JSON types are
 * SerializationException (as AWS's deserializer reports them), constraint violations are
 * ValidationException worded like AWS ("1 validation error detected: Value ... at 'keyId'
 * failed to satisfy constraint: ..."). Blobs are base64 strings on the wire.
 */
import { fromBase64, isWellFormedText } from '../../attestation/bytes';
import { KmsError } from './kms-error';

export type JsonObject = Readonly<Record<string, unknown>>;

function memberPath(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

function validation(name: string, shown: string, constraint: string): KmsError {
  return new KmsError(
    'ValidationException',
    `1 validation error detected: Value ${shown} at '${memberPath(name)}' failed to satisfy constraint: ${constraint}`,
  );
}

function typeError(name: string, expected: string): KmsError {
  return new KmsError('SerializationException', `${name} must be ${expected}`);
}

export function requireBodyObject(parsed: unknown): JsonObject {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new KmsError('SerializationException', 'the request body must be a JSON object');
  }
  return parsed as JsonObject;
}

interface Length {
  readonly min?: number;
  readonly max?: number;
}

function checkLength(name: string, length: number, shown: string, bounds: Length): void {
  if (bounds.min !== undefined && length < bounds.min) {
    throw validation(name, shown, `Member must have length greater than or equal to ${bounds.min}`);
  }
  if (bounds.max !== undefined && length > bounds.max) {
    throw validation(name, shown, `Member must have length less than or equal to ${bounds.max}`);
  }
}

export function optionalString(body: JsonObject, name: string, bounds: Length = {}): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw typeError(name, 'a string');
  checkLength(name, v.length, `'${v.length > 64 ? v.slice(0, 64) + '...' : v}'`, bounds);
  return v;
}

export function requiredString(body: JsonObject, name: string, bounds: Length = {}): string {
  const v = optionalString(body, name, bounds);
  if (v === undefined) throw validation(name, 'null', 'Member must not be null');
  return v;
}

export function optionalEnum<T extends string>(body: JsonObject, name: string, allowed: readonly T[]): T | undefined {
  const v = optionalString(body, name);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) {
    throw validation(name, `'${v}'`, `Member must satisfy enum value set: [${allowed.join(', ')}]`);
  }
  return v as T;
}

export function optionalBlob(body: JsonObject, name: string, bounds: Length = {}): Uint8Array | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw typeError(name, 'a base64 string');
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(v);
  } catch {
    throw new KmsError('SerializationException', `${name} is not valid base64`);
  }
  checkLength(name, bytes.length, 'java.nio.HeapByteBuffer', bounds);
  return bytes;
}

export function requiredBlob(body: JsonObject, name: string, bounds: Length = {}): Uint8Array {
  const v = optionalBlob(body, name, bounds);
  if (v === undefined) throw validation(name, 'null', 'Member must not be null');
  return v;
}

export function optionalInteger(body: JsonObject, name: string, range: { min: number; max: number }): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(name, 'an integer');
  if (v < range.min) throw validation(name, `'${v}'`, `Member must have value greater than or equal to ${range.min}`);
  if (v > range.max) throw validation(name, `'${v}'`, `Member must have value less than or equal to ${range.max}`);
  return v;
}

export function optionalBoolean(body: JsonObject, name: string): boolean | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw typeError(name, 'a boolean');
  return v;
}

export function optionalStringList(body: JsonObject, name: string, maxItems: number): string[] | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw typeError(name, 'a list of strings');
  if (v.length > maxItems) throw validation(name, `[...]`, `Member must have length less than or equal to ${maxItems}`);
  return v as string[];
}

/**
 * EncryptionContext: a map of non-empty string keys to string values, all well-formed Unicode (a
 * lone surrogate would be bound as U+FFFD, so two contexts would open the same blob). Keys that
 * differ only in case are refused: key policies match context keys without case, and one of the
 * two values would go unchecked. The map has no prototype, so `__proto__` is a key like any other.
 */
export function optionalContext(body: JsonObject, name: string): Record<string, string> {
  const v = body[name];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw typeError(name, 'a map of strings');
  const out = Object.create(null) as Record<string, string>;
  const folded = new Set<string>();
  for (const [key, value] of Object.entries(v as Record<string, unknown>)) {
    if (typeof value !== 'string') throw typeError(`${name}.${key}`, 'a string');
    if (key.length === 0) throw validation(name, `'${key}'`, 'Map keys must have length greater than or equal to 1');
    if (!isWellFormedText(key) || !isWellFormedText(value)) throw typeError(name, 'a map of well-formed Unicode strings');
    if (folded.has(key.toLowerCase())) throw validation(name, `'${key}'`, 'Map keys must differ in more than letter case');
    folded.add(key.toLowerCase());
    out[key] = value;
  }
  return out;
}

export interface RecipientInfo {
  readonly keyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256';
  readonly attestationDocument: Uint8Array;
}

/** Recipient {KeyEncryptionAlgorithm, AttestationDocument} (KMS RecipientInfo). */
export function optionalRecipient(body: JsonObject): RecipientInfo | undefined {
  const v = body.Recipient;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw typeError('Recipient', 'a structure');
  const inner = v as JsonObject;
  const algorithm = optionalEnum(inner, 'KeyEncryptionAlgorithm', ['RSAES_OAEP_SHA_256'] as const);
  const document = optionalBlob(inner, 'AttestationDocument', { min: 1, max: 262144 });
  if (document === undefined) {
    throw new KmsError('ValidationException', "1 validation error detected: Value null at 'recipient.attestationDocument' failed to satisfy constraint: Member must not be null");
  }
  return { keyEncryptionAlgorithm: algorithm ?? 'RSAES_OAEP_SHA_256', attestationDocument: document };
}

/** Reject members that are not part of the operation's input shape. */
export function rejectUnknownMembers(body: JsonObject, known: readonly string[]): void {
  for (const key of Object.keys(body)) {
    if (!known.includes(key)) throw new KmsError('SerializationException', `Unknown member '${key}' in the request.`);
  }
}
