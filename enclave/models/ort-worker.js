'use strict';
/**
 * One onnxruntime session in its own thread. onnxruntime-node's session.run executes on the calling
 * thread (about 20 ms for the OCR model), so in the enclave's main thread it would stall HTTP,
 * attestation and receipt signing. Plain JavaScript: workers load it without a TypeScript loader.
 * Messages: {type:'run', id, feeds:{name:{type,data,dims}}} → {type:'result', id, outputs} | {type:'error', id, message};
 * {type:'release'} → {type:'released'}.
 */
const { parentPort, workerData } = require('node:worker_threads');
const ort = require('onnxruntime-node');

function plainTensor(t) {
  const data = ArrayBuffer.isView(t.data) ? new t.data.constructor(t.data) : Array.from(t.data);
  return { type: t.type, data, dims: Array.from(t.dims) };
}

async function main() {
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
    if (msg.type === 'release') {
      await session.release();
      parentPort.postMessage({ type: 'released' });
      return;
    }
    try {
      const feeds = {};
      for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      const results = await session.run(feeds);
      const outputs = {};
      const transfer = [];
      for (const [name, t] of Object.entries(results)) {
        outputs[name] = plainTensor(t);
        if (ArrayBuffer.isView(outputs[name].data)) transfer.push(outputs[name].data.buffer);
      }
      parentPort.postMessage({ type: 'result', id: msg.id, outputs }, transfer);
    } catch (err) {
      parentPort.postMessage({ type: 'error', id: msg.id, message: String((err && err.message) || err) });
    }
  });
}

main().catch((err) => parentPort.postMessage({ type: 'fatal', message: String((err && err.message) || err) }));
