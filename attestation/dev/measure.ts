/**
 * PCRs of a dev enclave image, computed from its real file contents the way AWS Nitro does.
 *
 * Real semantics (aws-nitro-enclaves-image-format, `EifHasher::new_without_cache` and
 * `tpm_extend_finalize_reset`, used by `nitro-cli build-enclave`): each measured PCR is one
 * TPM-style extend of a 48-byte zero register by the SHA-384 of the measured bytes streamed in
 * order:  PCR = SHA-384(0^48 || SHA-384(bytes)).
 *   PCR0 = the whole image (kernel, cmdline, every ramdisk, in order)
 *   PCR1 = the boot part (kernel, cmdline, first ramdisk: the part AWS provides)
 *   PCR2 = the application part (the remaining ramdisks: the user's code)
 * The NSM ExtendPCR operation on a running enclave is  PCR = SHA-384(PCR || data)  with the data
 * as given (not hashed first): `extendPcr` below. Build-time measurement is that operation applied
 * once to the zero register with data = SHA-384(bytes).
 * As in Nitro, files are hashed as one concatenated stream: the boundaries between them are not
 * measured. Contents only: the Node caller reads the files; nothing here does I/O.
 */
import { concatByteList, concatBytes, sha384 } from '../bytes';
import { TeegateError } from '../errors';

export const PCR_LENGTH = 48;

export interface ImageParts {
  /** Every file of the image, in order (PCR0). */
  readonly image: readonly Uint8Array[];
  /** The kernel / boot files (PCR1). */
  readonly kernel?: readonly Uint8Array[];
  /** The application files (PCR2). */
  readonly application?: readonly Uint8Array[];
}

function invalid(message: string): never {
  throw new TeegateError('NSM_REQUEST_INVALID', message);
}

/** NSM ExtendPCR: SHA-384(pcr || data). */
export async function extendPcr(pcr: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  if (!(pcr instanceof Uint8Array) || pcr.length !== PCR_LENGTH) invalid(`a PCR is ${PCR_LENGTH} bytes`);
  if (!(data instanceof Uint8Array)) invalid('extend data must be bytes');
  return sha384(concatBytes(pcr, data));
}

/** One build-time measurement: extend of the zero register by SHA-384 of the files streamed in order. */
export async function measureFiles(files: readonly Uint8Array[]): Promise<Uint8Array> {
  return extendPcr(new Uint8Array(PCR_LENGTH), await sha384(concatByteList(files)));
}

function checkFiles(files: unknown, what: string, required: boolean): files is readonly Uint8Array[] {
  if (files === undefined && !required) return false;
  if (!Array.isArray(files) || files.length === 0) invalid(`${what} must be a non-empty list of file contents`);
  files.forEach((f, i) => {
    if (!(f instanceof Uint8Array)) invalid(`${what}[${i}] must be the file's bytes`);
  });
  return true;
}

/** PCR0 (always), PCR1 and PCR2 (when those parts are given) of an image. */
export async function measureImage(parts: ImageParts): Promise<Map<number, Uint8Array>> {
  if (typeof parts !== 'object' || parts === null) invalid('image parts must be an object');
  const pcrs = new Map<number, Uint8Array>();
  if (checkFiles(parts.image, 'image', true)) pcrs.set(0, await measureFiles(parts.image));
  if (checkFiles(parts.kernel, 'kernel', false)) pcrs.set(1, await measureFiles(parts.kernel));
  if (checkFiles(parts.application, 'application', false)) pcrs.set(2, await measureFiles(parts.application));
  return pcrs;
}
