// ONNX Runtime alone, the yardstick of calibration: load MODEL, run it on every .npy sample
// (float32, C order), print {"load_s", "run_s", "total_s"} as JSON.
//   ZEROPOINT_ORT_MODULES=build/onnxruntime-node/node_modules node bench/ort_baseline.js MODEL a.npy ...
const ort = require(process.env.ZEROPOINT_ORT_MODULES + '/onnxruntime-node');
const fs = require('fs');

function readNpy(file) {
  const b = fs.readFileSync(file);
  const headerLength = b.readUInt16LE(8);
  const header = b.subarray(10, 10 + headerLength).toString();
  if (!header.includes("'<f4'") || header.includes("'fortran_order': True")) throw new Error(`${file}: not a C-order float32 array`);
  const shape = header.match(/\((.*?)\)/)[1].split(',').filter((s) => s.trim()).map(Number);
  const data = new Float32Array(b.buffer.slice(b.byteOffset + 10 + headerLength, b.byteOffset + b.length));
  return new ort.Tensor('float32', data, shape);
}

(async () => {
  const [model, ...files] = process.argv.slice(2);
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(model);
  const t1 = process.hrtime.bigint();
  let run = 0n;
  for (const f of files) {
    const x = readNpy(f);
    const a = process.hrtime.bigint();
    await session.run({ [session.inputNames[0]]: x });
    run += process.hrtime.bigint() - a;
  }
  const s = (ns) => Number(ns) / 1e9;
  console.log(JSON.stringify({ load_s: s(t1 - t0), run_s: s(run), total_s: s(process.hrtime.bigint() - t0) }));
})().catch((e) => { console.error(e.message); process.exit(1); });
