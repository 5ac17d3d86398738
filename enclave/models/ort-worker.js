'use strict';
/**
 * One onnxruntime session in its own thread. onnxruntime-node's session.run executes on the calling
 * thread (about 20 ms for the OCR model), so in the enclave's main thread it would stall HTTP,
 * attestation and receipt signing. Plain JavaScript: workers load it without a TypeScript loader.
 *
 * A model may also have its pre-processing run here (workerData.prepare: a module and the name of
 * its export, TypeScript loaded through tsx): `prepare(input, inputNames)` turns a request's raw
 * input (bytes) into the feeds, in the thread that then runs them: the main thread's event loop
 * is not held up by it (the OCR line's PNG decode and resize take about 0.25 ms), and the input
 * tensor is written by the thread whose caches then feed it to onnxruntime.
 *
 * Messages: {type:'run', id, feeds:{name:{type,data,dims}}, fetches?:[name]} or {type:'prepared',
 * id, input, fetches?} → {type:'result', id, outputs} | {type:'error', id, stage:'prepare'|'run',
 * code?, message}. Without `fetches`, every output of the model comes back.
 */
const { parentPort, workerData } = require('node:worker_threads');
const ort = require('onnxruntime-node');

/**
 * A tensor as a message, and the buffer to transfer with it (no copy). onnxruntime-node gives each
 * output its own ArrayBuffer; a view that does not cover its whole buffer is copied instead, so a
 * transfer never detaches memory something else still uses.
 */
function plainTensor(t) {
  const view = ArrayBuffer.isView(t.data) ? t.data : undefined;
  if (view === undefined) return { tensor: { type: t.type, data: Array.from(t.data), dims: Array.from(t.dims) } };
  const whole = view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && !(view.buffer instanceof SharedArrayBuffer);
  const data = whole ? view : new view.constructor(view);
  return { tensor: { type: t.type, data, dims: Array.from(t.dims) }, buffer: data.buffer };
}

function loadPrepare(spec) {
  if (spec === undefined) return undefined;
  if (spec.module.endsWith('.ts')) require('tsx/cjs');
  const prepare = require(spec.module)[spec.export];
  if (typeof prepare !== 'function') throw new Error(`${spec.module} has no function ${spec.export}`);
  return prepare;
}

/** An error reply: `stage` says whether session.run was reached; a pre-processing error keeps its code. */
function errorReply(id, stage, err) {
  const code = err && typeof err.code === 'string' ? err.code : undefined;
  return { type: 'error', id, stage, ...(code === undefined ? {} : { code }), message: String((err && err.message) || err) };
}

async function main() {
  const prepare = loadPrepare(workerData.prepare);
  const session = await ort.InferenceSession.create(workerData.model, workerData.options);
  const meta = (m) => ({ name: m.name, isTensor: m.isTensor, type: m.type, shape: m.shape ? Array.from(m.shape) : undefined });
  parentPort.postMessage({
    type: 'ready',
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputMetadata: session.inputMetadata.map(meta),
    outputMetadata: session.outputMetadata.map(meta),
  });
  parentPort.on('message', async (msg) => {
    let plain = msg.feeds;
    if (msg.type === 'prepared') {
      try {
        if (prepare === undefined) throw new Error('this model has no pre-processing in its worker');
        plain = prepare(msg.input, session.inputNames);
      } catch (err) {
        parentPort.postMessage(errorReply(msg.id, 'prepare', err));
        return;
      }
    }
    try {
      const feeds = {};
      for (const [name, t] of Object.entries(plain)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      const results = await (msg.fetches ? session.run(feeds, msg.fetches) : session.run(feeds));
      const outputs = {};
      const transfer = [];
      for (const [name, t] of Object.entries(results)) {
        const { tensor, buffer } = plainTensor(t);
        outputs[name] = tensor;
        if (buffer !== undefined) transfer.push(buffer);
      }
      parentPort.postMessage({ type: 'result', id: msg.id, outputs }, transfer);
    } catch (err) {
      parentPort.postMessage(errorReply(msg.id, 'run', err));
    }
  });
}

main().catch((err) => parentPort.postMessage({ type: 'fatal', message: String((err && err.message) || err) }));
