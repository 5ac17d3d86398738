/**
 * OpenAPI 3.1 description of the gateway's HTTP surface. test/unit/gateway-openapi.test.ts keeps
 * it in step with the routes the app registers (same paths, same methods).
 */
import { ENCLAVE_HEADER, LOG_INDEX_HEADER, RECEIPT_HEADER, SEAL_KID_HEADER, SERVER_TIMING_HEADER } from '../attestation/headers';
import { OIP_DATATYPES } from '../attestation/tensors';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ 'application/json': { schema } });
const errorResponse = (description: string) => ({ description, content: json(ref('Error')) });

const ERRORS = {
  '401': errorResponse('No API key (AUTH_REQUIRED) or an unknown one (AUTH_INVALID)'),
  '403': errorResponse('The key lacks the scope (AUTH_FORBIDDEN)'),
  '429': errorResponse('Rate limited (RATE_LIMITED); see Retry-After'),
};
const UPSTREAM_ERRORS = {
  '502': errorResponse('UPSTREAM_OUTCOME_UNKNOWN, UPSTREAM_INVALID or ENCLAVE_IDENTITY_CHANGED'),
  '503': errorResponse('NO_ENCLAVE_AVAILABLE'),
  '504': errorResponse('UPSTREAM_TIMEOUT'),
};

const modelParam = { name: 'model', in: 'path', required: true, schema: { type: 'string' } };
const versionParam = { name: 'version', in: 'path', required: true, schema: { type: 'string' } };

function metadataOp(versioned: boolean) {
  return {
    get: {
      summary: 'Model metadata (relayed from an enclave serving the model)',
      parameters: versioned ? [modelParam, versionParam] : [modelParam],
      responses: { '200': { description: 'Model metadata', content: json(ref('ModelMetadata')) }, '404': errorResponse('MODEL_NOT_FOUND'), ...UPSTREAM_ERRORS },
    },
  };
}

function readyOp(versioned: boolean) {
  return {
    get: {
      summary: 'Model readiness',
      parameters: versioned ? [modelParam, versionParam] : [modelParam],
      responses: {
        '200': { description: 'Ready', content: json({ type: 'object', properties: { name: { type: 'string' }, ready: { type: 'boolean' } } }) },
        '404': errorResponse('MODEL_NOT_FOUND'),
        '503': errorResponse('Not ready (NO_ENCLAVE_AVAILABLE, with ready: false)'),
      },
    },
  };
}

function inferOp(versioned: boolean) {
  return {
    post: {
      summary: 'Inference, plain (application/json) or sealed (application/jose, relayed as opaque bytes)',
      security: [{ bearer: [] }],
      parameters: [
        ...(versioned ? [modelParam, versionParam] : [modelParam]),
        { name: SEAL_KID_HEADER, in: 'header', required: false, description: 'Sealed requests: kid of the seal key the JWE is encrypted to (routes to that enclave)', schema: { type: 'string' } },
      ],
      requestBody: {
        required: true,
        content: { ...json(ref('InferenceRequest')), 'application/jose': { schema: { type: 'string', description: 'JWE compact (ECDH-ES+A256KW, A256GCM) to an enclave seal key' } } },
      },
      responses: {
        '200': {
          description: 'Inference response; receipt in parameters.receipt (plain) or inside the sealed response',
          headers: {
            [RECEIPT_HEADER]: { description: 'The receipt JWS', schema: { type: 'string' } },
            [LOG_INDEX_HEADER]: { description: 'Index of the receipt in the transparency log', schema: { type: 'integer' } },
            [ENCLAVE_HEADER]: { description: 'The enclave that served the request', schema: { type: 'string' } },
            [SERVER_TIMING_HEADER]: {
              description: "W3C Server-Timing, ms: infer (the enclave's own inference), enclave (the relay, infer included), log (the receipt's durable append), total (arrival to answer)",
              schema: { type: 'string' },
            },
          },
          content: { ...json(ref('InferenceResponse')), 'application/jose': { schema: { type: 'string' } } },
        },
        '400': errorResponse('Invalid request (tensor, JWE or nonce errors from the enclave)'),
        '404': errorResponse('MODEL_NOT_FOUND'),
        '413': errorResponse('BODY_TOO_LARGE'),
        '415': errorResponse('MEDIA_TYPE_UNSUPPORTED'),
        ...ERRORS,
        ...UPSTREAM_ERRORS,
      },
    },
  };
}

const tensor = {
  type: 'object',
  required: ['name', 'shape', 'datatype', 'data'],
  properties: {
    name: { type: 'string' },
    shape: { type: 'array', items: { type: 'integer', minimum: 0 } },
    datatype: { type: 'string', enum: [...OIP_DATATYPES] },
    parameters: { type: 'object' },
    data: { type: 'array' },
  },
};

export function buildOpenApi(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'teegate gateway',
      version: '0.1.0',
      description: 'Open Inference Protocol (KServe v2) gateway to attested enclaves, with signed receipts and a transparency log.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API key' } },
      schemas: {
        Error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
        ServerMetadata: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'string' }, extensions: { type: 'array', items: { type: 'string' } } } },
        ModelMetadata: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            versions: { type: 'array', items: { type: 'string' } },
            platform: { type: 'string' },
            inputs: { type: 'array', items: { type: 'object' } },
            outputs: { type: 'array', items: { type: 'object' } },
          },
        },
        InferenceRequest: {
          type: 'object',
          required: ['inputs'],
          properties: {
            id: { type: 'string' },
            parameters: { type: 'object', properties: { nonce: { type: 'string', description: 'hex, at most 64 bytes; signed into the receipt' } } },
            inputs: { type: 'array', items: tensor },
            outputs: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, parameters: { type: 'object' } } } },
          },
        },
        InferenceResponse: {
          type: 'object',
          properties: {
            model_name: { type: 'string' },
            model_version: { type: 'string' },
            id: { type: 'string' },
            outputs: { type: 'array', items: tensor },
            parameters: {
              type: 'object',
              properties: { receipt: { type: 'string' }, salt: { type: 'string' }, log_index: { type: 'integer' } },
            },
          },
        },
        Attestation: { type: 'object', properties: { document: { type: 'string', contentEncoding: 'base64' }, manifest: { type: 'object' } } },
      },
    },
    paths: {
      '/v2': { get: { summary: 'Server metadata', responses: { '200': { description: 'Server metadata', content: json(ref('ServerMetadata')) } } } },
      '/v2/health/live': { get: { summary: 'Server liveness', responses: { '200': { description: 'Live', content: json({ type: 'object', properties: { live: { type: 'boolean' } } }) } } } },
      '/v2/health/ready': {
        get: {
          summary: 'Server readiness: at least one attested enclave is ready',
          responses: { '200': { description: 'Ready', content: json({ type: 'object', properties: { ready: { type: 'boolean' } } }) }, '503': errorResponse('Not ready') },
        },
      },
      '/v2/models': {
        get: {
          summary: 'Models served by the attested enclaves',
          responses: { '200': { description: 'Models', content: json({ type: 'object', properties: { models: { type: 'array', items: { type: 'object' } } } }) } },
        },
      },
      '/v2/models/{model}': metadataOp(false),
      '/v2/models/{model}/versions/{version}': metadataOp(true),
      '/v2/models/{model}/ready': readyOp(false),
      '/v2/models/{model}/versions/{version}/ready': readyOp(true),
      '/v2/models/{model}/infer': inferOp(false),
      '/v2/models/{model}/versions/{version}/infer': inferOp(true),
      '/v1/attestation': {
        get: {
          summary: "A fresh attestation document from an enclave's NSM carrying the nonce, with its manifest",
          parameters: [
            { name: 'nonce', in: 'query', required: true, schema: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' } },
            { name: 'enclave', in: 'query', required: false, description: 'An enclave id from /v1/enclaves', schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'Attestation', content: json(ref('Attestation')) }, '400': errorResponse('NONCE_INVALID'), '429': ERRORS['429'], ...UPSTREAM_ERRORS },
        },
      },
      '/v1/enclaves': {
        get: { summary: 'Configured enclaves: state, boot document, manifest, log index', responses: { '200': { description: 'Enclaves', content: json({ type: 'object' }) } } },
      },
      '/.well-known/jwks.json': {
        get: { summary: 'Receipt keys of the attested enclaves (JWK Set)', responses: { '200': { description: 'JWK Set', content: json({ type: 'object', properties: { keys: { type: 'array' } } }) } } },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics (admin scope unless metrics.public)',
          security: [{ bearer: [] }],
          responses: { '200': { description: 'Prometheus text', content: { 'text/plain': { schema: { type: 'string' } } } }, ...ERRORS },
        },
      },
      '/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } } } },
      '/v1/policy': {
        get: { summary: 'The measurement policy this gateway enforces (docs/policy.md format)', responses: { '200': { description: 'Policy file', content: json({ type: 'object' }) } } },
      },
      '/v1/log/checkpoint': { get: { summary: 'Latest signed checkpoint (C2SP signed note)', responses: { '200': { description: 'Signed note', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
      '/v1/log/key': { get: { summary: "The log's verifier key (C2SP note verifier key); pin it out of band", responses: { '200': { description: 'Verifier key', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
      '/v1/log/tile/{path}': {
        get: {
          summary: 'C2SP tlog-tiles: hash tiles and entry bundles (path like 0/x001/234 or entries/000.p/5)',
          parameters: [{ name: 'path', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': { description: 'Tile bytes', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } }, '404': errorResponse('LOG_NOT_FOUND') },
        },
      },
      '/v1/log/entries': { get: { summary: 'Entries by index range (?start&count)', responses: { '200': { description: 'Entries', content: json({ type: 'object' }) } } } },
      '/v1/log/proof/inclusion': { get: { summary: 'Inclusion proof (?index[&size])', responses: { '200': { description: 'Proof', content: json({ type: 'object' }) } } } },
      '/v1/log/proof/consistency': { get: { summary: 'Consistency proof (?from[&to])', responses: { '200': { description: 'Proof', content: json({ type: 'object' }) } } } },
      '/ui/': { get: { summary: 'Web explorer (HTML; verifies everything in the browser)', responses: { '200': { description: 'HTML page', content: { 'text/html': { schema: { type: 'string' } } } } } } },
    },
  };
}
