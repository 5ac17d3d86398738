/** HTTP headers of the teegate protocol (docs/enclave-api.md), shared by enclave, gateway and clients. */

/** The enclave's receipt JWS for the inference it answered. */
export const RECEIPT_HEADER = 'teegate-receipt';
/** The gateway's transparency-log index of that receipt. */
export const LOG_INDEX_HEADER = 'teegate-log-index';
/** Sealed requests: the kid of the seal key the JWE is encrypted to. */
export const SEAL_KID_HEADER = 'teegate-seal-kid';
/** The gateway's id of the enclave that answered. */
export const ENCLAVE_HEADER = 'teegate-enclave';
