export { decodeCbor, type CborDecodeOptions } from './decode';
export { encodeCbor } from './encode';
export { CborTag, CborIndefinite, type CborValue, type CborMap, type CborKey, type CborEncodable } from './types';
