/** A manifest as an enclave publishes it at boot (enclave-service.ts), for keys of generateEnclaveKeys. */
import { randomUUID } from 'node:crypto';
import type { EnclaveManifest, ManifestModel } from '../../attestation/manifest';
import { SOFTWARE } from '../../enclave/enclave-service';
import type { EnclaveKeys } from '../../enclave/keys';

export function enclaveManifest(keys: EnclaveKeys, models: readonly ManifestModel[], bootId: string = randomUUID()): EnclaveManifest {
  return {
    version: 1,
    boot_id: bootId,
    issued_at: new Date().toISOString(),
    software: { ...SOFTWARE },
    keys: { receipt: keys.receipt.publicJwk, seal: keys.seal.publicJwk },
    models: [...models],
  };
}
