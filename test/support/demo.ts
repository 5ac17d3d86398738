/** The shipped demo input: one line of text as a PNG, as an OIP request to the OCR model. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEMO_MODEL = 'ppocr-v4-rec';
export const DEMO_TEXT = 'Confidential inference verified';

export function demoRequest(): { inputs: { name: string; datatype: 'BYTES'; shape: number[]; data: string[] }[] } {
  const png = readFileSync(join(__dirname, '../../enclave/models/demo/line.png'));
  return { inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [png.toString('base64')] }] };
}
