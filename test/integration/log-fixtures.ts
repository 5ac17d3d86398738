/**
 * Real evidence and a real log server for the log and audit tests: a dev CA and dev attester
 * (simulated NSM), enclave keys and manifest bound to a boot document, receipts signed by the
 * enclave's ReceiptSigner, and the transparency log served by its express router on loopback.
 */
import { KeyObject, sign as cryptoSign } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, sha384, toHex } from '../../attestation/bytes';
import { DevAttester } from '../../attestation/dev/dev-attester';
import { createDevCa, type DevCa } from '../../attestation/dev/dev-ca';
import { manifestDigest, type EnclaveManifest } from '../../attestation/manifest';
import { generateEnclaveKeys } from '../../enclave/keys';
import { ReceiptSigner } from '../../enclave/receipt-signer';
import { logRouter } from '../../gateway/log/routes';
import { FileLogStorage } from '../../gateway/log/storage/file-storage';
import { TransparencyLog } from '../../gateway/log/transparency-log';
import { enclaveManifest } from '../support/manifest';

export interface BootedEnclave {
  readonly document: Uint8Array;
  readonly manifest: EnclaveManifest;
  readonly pcr0: string;
  readonly signer: ReceiptSigner;
  receipt(): Promise<string>;
  /** A receipt this enclave's own key signs with any `seq`: what a misbehaving enclave could log. */
  receiptWithSeq(seq: number): Promise<string>;
}

const MODEL = { name: 'ocr-line', version: '1', sha256: 'ab'.repeat(32) };

export async function devCa(): Promise<DevCa> {
  return createDevCa();
}

/** Boots an enclave image (PCR0 = `pcr0Byte` repeated) under the dev CA. */
export async function bootEnclave(ca: DevCa, pcr0Byte = 0x11): Promise<BootedEnclave> {
  const pcr0 = new Uint8Array(48).fill(pcr0Byte);
  const attester = await DevAttester.create({ ca, pcrs: new Map([[0, pcr0], [1, new Uint8Array(48).fill(2)], [2, new Uint8Array(48).fill(3)]]) });
  const keys = await generateEnclaveKeys();
  const manifest = enclaveManifest(keys, [MODEL], `boot-${toHex(randomBytes(8))}`);
  const document = await attester.attest({ publicKey: keys.receiptSpki, userData: await manifestDigest(manifest) });
  const signer = new ReceiptSigner(keys.receipt.privateKey, keys.receipt.publicJwk.kid, manifest.boot_id, toHex(await sha384(document)));
  let n = 0;
  const receipt = async () => (await signer.sign({ jti: `req-${n++}`, model: MODEL, input: 'cd'.repeat(32), output: 'ef'.repeat(32), sealed: false })).jws;
  return {
    document,
    manifest,
    pcr0: toHex(pcr0),
    signer,
    receipt,
    receiptWithSeq: async (seq) => {
      const [header, payload] = (await receipt()).split('.') as [string, string];
      const claims = { ...(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as object), seq };
      const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
      const signature = cryptoSign('sha256', Buffer.from(input), { key: KeyObject.from(keys.receipt.privateKey), dsaEncoding: 'ieee-p1363' });
      return `${input}.${signature.toString('base64url')}`;
    },
  };
}

export function tempDir(prefix = 'teegate-log-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function openFileLog(dir: string, origin = 'test.teegate/log', signerKey?: string): Promise<TransparencyLog> {
  const storage = await FileLogStorage.open(dir);
  try {
    return await TransparencyLog.open({ storage, origin, ...(signerKey ? { signerKey } : {}) });
  } catch (err) {
    await storage.close(); // the log refused it: its caller owns the store
    throw err;
  }
}

export interface ServedLog {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves a log's router at <url>/v1/log on loopback. */
export async function serveLog(log: TransparencyLog): Promise<ServedLog> {
  const app = express();
  app.use('/v1/log', logRouter(log));
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
