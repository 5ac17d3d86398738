/**
 * Reading a file a person named (a configuration, a policy, a CLI input) without trusting what it
 * is: a regular file of at most `maxBytes`, opened without blocking and checked before it is read,
 * so a FIFO, a device (`/dev/zero`) or a folder given by mistake is refused at once instead of a
 * read that hangs or fills memory.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';

/** A file that exists but is not one to read: not a regular file, or larger than allowed. */
export class FileRefusedError extends Error {
  override readonly name = 'FileRefusedError';
  constructor(
    readonly kind: 'not-regular' | 'too-large',
    readonly size: number,
    readonly maxBytes: number,
  ) {
    super(kind === 'not-regular' ? 'not a regular file' : `${size} bytes, more than ${maxBytes}`);
  }
}

/** The whole file; FileRefusedError as above, the file system's own error when it cannot be opened. */
export function readRegularFile(path: string, maxBytes: number): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FileRefusedError('not-regular', st.size, maxBytes);
    if (st.size > maxBytes) throw new FileRefusedError('too-large', st.size, maxBytes);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}
