/**
 * The NSM wire protocol: the CBOR request and response that travel through the /dev/nsm ioctl.
 *
 * Source of truth: aws/aws-nitro-enclaves-nsm-api, src/api/mod.rs (`enum Request`, `enum Response`,
 * `enum ErrorCode`, `enum Digest`), serialised by serde (serde_cbor / ciborium) in
 * src/driver/mod.rs (`nsm_encode_request_to_cbor`, `nsm_decode_response_from_cbor`). serde writes
 * enums *externally tagged*:
 *  - a unit variant is a bare text string:            "GetRandom", "DescribeNSM", "LockPCR"
 *  - a struct variant is a one-entry map, name → map of fields in declaration order:
 *      {"DescribePCR": {"index": u16}}
 *      {"ExtendPCR": {"index": u16, "data": bstr}}            (data: serde_bytes)
 *      {"LockPCR": {"index": u16}}    {"LockPCRs": {"range": u16}}
 *      {"Attestation": {"user_data": bstr/null, "nonce": bstr/null, "public_key": bstr/null}}
 *                                                              (Option<ByteBuf>: None is null)
 *  - a newtype variant is a one-entry map, name → value:  {"Error": "InvalidArgument"}
 * Responses (same file): {"DescribePCR": {"lock": bool, "data": bstr}}, {"ExtendPCR": {"data": bstr}},
 *   "LockPCR", "LockPCRs", {"Attestation": {"document": bstr}}, {"GetRandom": {"random": bstr}},
 *   {"DescribeNSM": {"version_major": u16, "version_minor": u16, "version_patch": u16,
 *     "module_id": tstr, "max_pcrs": u16, "locked_pcrs": [u16...] (BTreeSet), "digest": "SHA384"}},
 *   {"Error": ErrorCode}.
 * Sizes from src/driver/mod.rs: NSM_REQUEST_MAX_SIZE = 0x1000, NSM_RESPONSE_MAX_SIZE = 0x3000.
 *
 * Requests are encoded byte-exactly as serde does (shortest-form heads, fields in declaration
 * order). Responses are attacker-reachable bytes (they cross the helper's pipe): decoded with CBOR
 * limits, type-checked per field; unknown fields are ignored as serde's derive does, so a newer NSM
 * that adds a field still works. Request *decoding* exists for the simulated NSM (dev-nsm.ts) and is
 * strict (unknown fields rejected) to catch encoder bugs.
 */
import { decodeCbor, encodeCbor, type CborEncodable, type CborMap, type CborValue } from '../../attestation/cbor';
import { TeegateError, isTeegateError, type ErrorCode } from '../../attestation/errors';

export const NSM_REQUEST_MAX_SIZE = 0x1000;
export const NSM_RESPONSE_MAX_SIZE = 0x3000;
/** user_data, nonce and public_key: AWS's attestation CDDL allows 1024 bytes each (see attestation/nitro/document.ts). */
export const NSM_ATTESTATION_FIELD_MAX = 1024;
/** The NSM's PCR bank digest is SHA-384 (Digest::SHA384), so PCR values are 48 bytes. */
export const NSM_PCR_LENGTH = 48;

/** `enum ErrorCode` of src/api/mod.rs, in declaration order. */
export const NSM_ERROR_CODES = [
  'Success',
  'InvalidArgument',
  'InvalidIndex',
  'InvalidResponse',
  'ReadOnlyIndex',
  'InvalidOperation',
  'BufferTooSmall',
  'InputTooLarge',
  'InternalError',
] as const;
export type NsmErrorCode = (typeof NSM_ERROR_CODES)[number];

export type NsmDigest = 'SHA256' | 'SHA384' | 'SHA512';
const DIGESTS: readonly NsmDigest[] = ['SHA256', 'SHA384', 'SHA512'];

export type NsmRequest =
  | { readonly type: 'DescribePCR'; readonly index: number }
  | { readonly type: 'ExtendPCR'; readonly index: number; readonly data: Uint8Array }
  | { readonly type: 'LockPCR'; readonly index: number }
  | { readonly type: 'LockPCRs'; readonly range: number }
  | { readonly type: 'DescribeNSM' }
  | {
      readonly type: 'Attestation';
      readonly userData?: Uint8Array;
      readonly nonce?: Uint8Array;
      readonly publicKey?: Uint8Array;
    }
  | { readonly type: 'GetRandom' };

export interface NsmDescription {
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly versionPatch: number;
  readonly moduleId: string;
  readonly maxPcrs: number;
  readonly lockedPcrs: readonly number[];
  readonly digest: NsmDigest;
}

export type NsmResponse =
  | { readonly type: 'DescribePCR'; readonly lock: boolean; readonly data: Uint8Array }
  | { readonly type: 'ExtendPCR'; readonly data: Uint8Array }
  | { readonly type: 'LockPCR' }
  | { readonly type: 'LockPCRs' }
  | ({ readonly type: 'DescribeNSM' } & NsmDescription)
  | { readonly type: 'Attestation'; readonly document: Uint8Array }
  | { readonly type: 'GetRandom'; readonly random: Uint8Array }
  | { readonly type: 'Error'; readonly error: NsmErrorCode };

export type NsmRequestType = NsmRequest['type'];
export type NsmSuccess<T extends NsmRequestType> = Extract<NsmResponse, { type: T }>;

// ---------------------------------------------------------------------------------------------
// Requests

function requestInvalid(message: string): never {
  throw new TeegateError('NSM_REQUEST_INVALID', message);
}

function u16(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) requestInvalid(`${what} must be an integer 0..65535, got ${value}`);
  return value;
}

function optionalField(value: Uint8Array | undefined, what: string): Uint8Array | null {
  if (value === undefined) return null;
  if (!(value instanceof Uint8Array)) requestInvalid(`${what} must be bytes`);
  if (value.length > NSM_ATTESTATION_FIELD_MAX) {
    requestInvalid(`${what} is ${value.length} bytes; the NSM accepts at most ${NSM_ATTESTATION_FIELD_MAX}`);
  }
  return value;
}

function variant(name: string, fields: [string, CborEncodable][]): CborEncodable {
  return new Map<string, CborEncodable>([[name, new Map<string, CborEncodable>(fields)]]);
}

function requestItem(req: NsmRequest): CborEncodable {
  switch (req.type) {
    case 'DescribePCR':
      return variant('DescribePCR', [['index', u16(req.index, 'PCR index')]]);
    case 'ExtendPCR':
      if (!(req.data instanceof Uint8Array)) requestInvalid('ExtendPCR data must be bytes');
      return variant('ExtendPCR', [['index', u16(req.index, 'PCR index')], ['data', req.data]]);
    case 'LockPCR':
      return variant('LockPCR', [['index', u16(req.index, 'PCR index')]]);
    case 'LockPCRs':
      return variant('LockPCRs', [['range', u16(req.range, 'PCR range')]]);
    case 'Attestation':
      return variant('Attestation', [
        ['user_data', optionalField(req.userData, 'user_data')],
        ['nonce', optionalField(req.nonce, 'nonce')],
        ['public_key', optionalField(req.publicKey, 'public_key')],
      ]);
    case 'DescribeNSM':
    case 'GetRandom':
      return req.type;
  }
}

/** The CBOR bytes serde would send for `req`; NSM_REQUEST_INVALID if it cannot be sent. */
export function encodeNsmRequest(req: NsmRequest): Uint8Array {
  const bytes = encodeCbor(requestItem(req));
  if (bytes.length > NSM_REQUEST_MAX_SIZE) {
    requestInvalid(`${req.type} request is ${bytes.length} bytes; NSM_REQUEST_MAX_SIZE is ${NSM_REQUEST_MAX_SIZE}`);
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Shared decoding of externally tagged enums

interface Tagged {
  readonly name: string;
  /** undefined for a unit variant (bare text string). */
  readonly body: CborValue | undefined;
}

function decodeTagged(bytes: Uint8Array, maxSize: number, fail: (message: string) => never, what: string): Tagged {
  if (!(bytes instanceof Uint8Array)) fail(`${what} must be bytes`);
  if (bytes.length > maxSize) fail(`${what} is ${bytes.length} bytes; the maximum is ${maxSize}`);
  let root: CborValue;
  try {
    // DescribeNSM is the deepest: map → map → array (depth 3).
    root = decodeCbor(bytes, { maxDepth: 4, maxItems: 512, maxStringLength: maxSize, maxInputLength: maxSize });
  } catch (err) {
    if (isTeegateError(err)) fail(`${what} is not valid CBOR: ${err.code}: ${err.message}`);
    throw err;
  }
  if (typeof root === 'string') return { name: root, body: undefined };
  if (!(root instanceof Map) || root.size !== 1) fail(`${what} must be a text string or a one-entry map (a serde enum)`);
  const [name, body] = [...root][0]!;
  if (typeof name !== 'string') fail(`${what} variant name must be a text string`);
  return { name, body };
}

function fieldsOf(t: Tagged, fail: (message: string) => never, what: string): CborMap {
  if (!(t.body instanceof Map)) fail(`${what} ${t.name} must carry a map of fields`);
  return t.body;
}

function bytesField(fields: CborMap, key: string, fail: (m: string) => never, where: string): Uint8Array {
  const v = fields.get(key);
  if (!(v instanceof Uint8Array)) fail(`${where}.${key} must be a byte string`);
  return v;
}

function u16Field(fields: CborMap, key: string, fail: (m: string) => never, where: string): number {
  const v = fields.get(key);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) fail(`${where}.${key} must be an integer 0..65535`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Requests, decoded (for the simulated NSM)

function onlyFields(fields: CborMap, allowed: readonly string[], where: string): void {
  for (const k of fields.keys()) {
    if (typeof k !== 'string' || !allowed.includes(k)) requestInvalid(`${where} has unknown field ${JSON.stringify(k)}`);
  }
}

function optionalRequestBytes(fields: CborMap, key: string): Uint8Array | undefined {
  const v = fields.get(key);
  if (v === undefined || v === null) return undefined;
  if (!(v instanceof Uint8Array)) requestInvalid(`Attestation.${key} must be a byte string or null`);
  if (v.length > NSM_ATTESTATION_FIELD_MAX) requestInvalid(`Attestation.${key} is over ${NSM_ATTESTATION_FIELD_MAX} bytes`);
  return v;
}

/** Reads a request as the NSM would (NSM_REQUEST_INVALID for anything it would refuse to parse). */
export function decodeNsmRequest(bytes: Uint8Array): NsmRequest {
  const t = decodeTagged(bytes, NSM_REQUEST_MAX_SIZE, requestInvalid, 'NSM request');
  if (t.body === undefined) {
    if (t.name === 'GetRandom' || t.name === 'DescribeNSM') return { type: t.name };
    requestInvalid(`unknown or incomplete NSM request ${JSON.stringify(t.name)}`);
  }
  const f = fieldsOf(t, requestInvalid, 'NSM request');
  switch (t.name) {
    case 'DescribePCR':
    case 'LockPCR':
      onlyFields(f, ['index'], t.name);
      return { type: t.name, index: u16Field(f, 'index', requestInvalid, t.name) };
    case 'LockPCRs':
      onlyFields(f, ['range'], t.name);
      return { type: 'LockPCRs', range: u16Field(f, 'range', requestInvalid, t.name) };
    case 'ExtendPCR':
      onlyFields(f, ['index', 'data'], t.name);
      return {
        type: 'ExtendPCR',
        index: u16Field(f, 'index', requestInvalid, t.name),
        data: bytesField(f, 'data', requestInvalid, t.name),
      };
    case 'Attestation': {
      onlyFields(f, ['user_data', 'nonce', 'public_key'], t.name);
      const userData = optionalRequestBytes(f, 'user_data');
      const nonce = optionalRequestBytes(f, 'nonce');
      const publicKey = optionalRequestBytes(f, 'public_key');
      return {
        type: 'Attestation',
        ...(userData && { userData }),
        ...(nonce && { nonce }),
        ...(publicKey && { publicKey }),
      };
    }
    default:
      return requestInvalid(`unknown NSM request ${JSON.stringify(t.name)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Responses

function responseMalformed(message: string): never {
  throw new TeegateError('NSM_RESPONSE_MALFORMED', message);
}

function pcrValue(fields: CborMap, where: string): Uint8Array {
  const data = bytesField(fields, 'data', responseMalformed, where);
  if (data.length !== NSM_PCR_LENGTH) responseMalformed(`${where}.data must be ${NSM_PCR_LENGTH} bytes (SHA-384), got ${data.length}`);
  return data;
}

function nonEmptyBytes(fields: CborMap, key: string, where: string): Uint8Array {
  const v = bytesField(fields, key, responseMalformed, where);
  if (v.length === 0) responseMalformed(`${where}.${key} is empty`);
  return v;
}

function describeNsm(f: CborMap): NsmResponse {
  const w = 'DescribeNSM';
  const moduleId = f.get('module_id');
  if (typeof moduleId !== 'string') responseMalformed(`${w}.module_id must be a text string`);
  const locked = f.get('locked_pcrs');
  if (!Array.isArray(locked)) responseMalformed(`${w}.locked_pcrs must be an array`);
  const lockedPcrs = locked.map((v) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) responseMalformed(`${w}.locked_pcrs holds a non-u16`);
    return v;
  });
  const digest = f.get('digest');
  if (typeof digest !== 'string' || !(DIGESTS as readonly string[]).includes(digest)) responseMalformed(`${w}.digest must be SHA256, SHA384 or SHA512`);
  return {
    type: 'DescribeNSM',
    versionMajor: u16Field(f, 'version_major', responseMalformed, w),
    versionMinor: u16Field(f, 'version_minor', responseMalformed, w),
    versionPatch: u16Field(f, 'version_patch', responseMalformed, w),
    moduleId,
    maxPcrs: u16Field(f, 'max_pcrs', responseMalformed, w),
    lockedPcrs,
    digest: digest as NsmDigest,
  };
}

/**
 * Reads an NSM response. An `{"Error": code}` answer decodes to `{type: 'Error'}` (a valid
 * response); anything that is not one of the variants of `enum Response` is NSM_RESPONSE_MALFORMED.
 */
export function decodeNsmResponse(bytes: Uint8Array): NsmResponse {
  const t = decodeTagged(bytes, NSM_RESPONSE_MAX_SIZE, responseMalformed, 'NSM response');
  if (t.body === undefined) {
    if (t.name === 'LockPCR' || t.name === 'LockPCRs') return { type: t.name };
    responseMalformed(`unknown or incomplete NSM response ${JSON.stringify(t.name)}`);
  }
  if (t.name === 'Error') {
    const code = t.body;
    if (typeof code !== 'string' || !(NSM_ERROR_CODES as readonly string[]).includes(code)) {
      responseMalformed(`NSM Error carries an unknown error code ${JSON.stringify(code)}`);
    }
    return { type: 'Error', error: code as NsmErrorCode };
  }
  const f = fieldsOf(t, responseMalformed, 'NSM response');
  switch (t.name) {
    case 'DescribePCR': {
      const lock = f.get('lock');
      if (typeof lock !== 'boolean') responseMalformed('DescribePCR.lock must be a boolean');
      return { type: 'DescribePCR', lock, data: pcrValue(f, 'DescribePCR') };
    }
    case 'ExtendPCR':
      return { type: 'ExtendPCR', data: pcrValue(f, 'ExtendPCR') };
    case 'Attestation':
      return { type: 'Attestation', document: nonEmptyBytes(f, 'document', 'Attestation') };
    case 'GetRandom':
      return { type: 'GetRandom', random: nonEmptyBytes(f, 'random', 'GetRandom') };
    case 'DescribeNSM':
      return describeNsm(f);
    default:
      return responseMalformed(`unknown NSM response ${JSON.stringify(t.name)}`);
  }
}

/** The CBOR bytes the NSM sends for `res` (used by the simulated NSM and by tests). */
export function encodeNsmResponse(res: NsmResponse): Uint8Array {
  switch (res.type) {
    case 'DescribePCR':
      return encodeCbor(variant('DescribePCR', [['lock', res.lock], ['data', res.data]]));
    case 'ExtendPCR':
      return encodeCbor(variant('ExtendPCR', [['data', res.data]]));
    case 'LockPCR':
    case 'LockPCRs':
      return encodeCbor(res.type);
    case 'DescribeNSM':
      return encodeCbor(
        variant('DescribeNSM', [
          ['version_major', res.versionMajor],
          ['version_minor', res.versionMinor],
          ['version_patch', res.versionPatch],
          ['module_id', res.moduleId],
          ['max_pcrs', res.maxPcrs],
          ['locked_pcrs', [...res.lockedPcrs].sort((a, b) => a - b)],
          ['digest', res.digest],
        ]),
      );
    case 'Attestation':
      return encodeCbor(variant('Attestation', [['document', res.document]]));
    case 'GetRandom':
      return encodeCbor(variant('GetRandom', [['random', res.random]]));
    case 'Error':
      return encodeCbor(new Map<string, CborEncodable>([['Error', res.error]]));
  }
}

// ---------------------------------------------------------------------------------------------
// Errors and the request/response pairing

const NSM_ERROR_MAP: Record<NsmErrorCode, ErrorCode> = {
  // "Success" inside an Error variant is a contradiction: the response cannot be trusted.
  Success: 'NSM_RESPONSE_MALFORMED',
  InvalidArgument: 'NSM_REQUEST_INVALID',
  InvalidIndex: 'NSM_REQUEST_INVALID',
  InvalidOperation: 'NSM_REQUEST_INVALID',
  InputTooLarge: 'NSM_REQUEST_INVALID',
  ReadOnlyIndex: 'NSM_PCR_LOCKED',
  InvalidResponse: 'NSM_FAILED',
  BufferTooSmall: 'NSM_FAILED',
  InternalError: 'NSM_FAILED',
};

/** The typed error for an NSM `Error(code)` answer to a `requestType` request. */
export function nsmErrorToTeegateError(code: NsmErrorCode, requestType: NsmRequestType): TeegateError {
  return new TeegateError(NSM_ERROR_MAP[code], `the NSM answered ${requestType} with Error(${code})`);
}

/**
 * Checks that `res` answers a `requestType` request: the same variant, or a typed error for
 * `Error(code)`. A different variant is NSM_RESPONSE_MALFORMED.
 */
export function expectNsmResponse<T extends NsmRequestType>(requestType: T, res: NsmResponse): NsmSuccess<T> {
  if (res.type === 'Error') throw nsmErrorToTeegateError(res.error, requestType);
  if (res.type !== requestType) responseMalformed(`the NSM answered a ${requestType} request with ${res.type}`);
  return res as NsmSuccess<T>;
}
