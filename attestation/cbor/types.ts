/** The CBOR data model teegate reads and writes (RFC 8949 subset: no floats, no undefined). */

/** Map keys: the formats here (Nitro, COSE, NSM) only use text and integer keys. */
export type CborKey = string | number;

export type CborValue =
  | number
  | bigint
  | string
  | boolean
  | null
  | Uint8Array
  | CborValue[]
  | CborMap
  | CborTag;

export type CborMap = Map<CborKey, CborValue>;

/** A tagged item (decoded only for tags the caller allowed, e.g. 18 = COSE_Sign1). */
export class CborTag {
  constructor(
    readonly tag: number,
    readonly value: CborValue,
  ) {}
}

/**
 * Encoder-only marker: encode the wrapped array or map with an indefinite length (AWS Nitro
 * documents from 2025 on use an indefinite-length payload map).
 */
export class CborIndefinite {
  constructor(readonly value: CborValue[] | CborMap) {}
}

export type CborEncodable =
  | Exclude<CborValue, CborValue[] | CborMap | CborTag>
  | CborEncodable[]
  | Map<CborKey, CborEncodable>
  | CborTag
  | CborIndefinite;
