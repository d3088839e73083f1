#!/usr/bin/env node
// run_model.js — runs a float ONNX model and its quantized version on the same inputs with
// onnxruntime-node and prints, as one JSON object, how close the quantized model's first output
// stays to the float model's (tests/cli/test_onnx_models.py reads it).
//
//   node run_model.js [--modules DIR] [--save-outputs DIR] FLOAT.onnx [QUANTIZED.onnx] INPUT.npy...
//
// Each INPUT.npy is one sample (float32, C order, batch dimension included) fed to the model's
// single input. onnxruntime-node is loaded from DIR/onnxruntime-node, DIR being --modules or
// else the environment's ZEROPOINT_ORT_MODULES (else the usual require() search).
//
// Output, on stdout:
//   {"output": name, "shape": [...], "samples": [{"input", "cosine", "max_abs_diff"}...],
//    "cosine_min", "cosine_all", "max_abs_diff", "float_abs_max", "nonfinite", "ort_version"}
// "cosine" is the cosine similarity, in float64, of the float and quantized models' first output
// for that sample (flattened); "cosine_min" the least over the samples; "cosine_all" the cosine
// of all samples' outputs laid end to end (more telling than per-sample cosines when an output
// is a single number); "max_abs_diff" the largest |float - quantized| over every sample, and
// "float_abs_max" the largest |float| (the scale to read max_abs_diff against). A
// cosine is null when an output holds NaN or infinity ("nonfinite" counts such elements).
// With one model only, nothing is compared: the JSON gives the outputs' shapes.
// --save-outputs DIR writes the float model's first output for each INPUT.npy as DIR/<same name>
// (float32 .npy), e.g. to feed one model's outputs to the next.
//
// Any error (missing file, bad .npy, a model that does not load or run) prints a message on
// stderr and exits 1; a bad command line exits 2.
'use strict';

const fs = require('fs');
const path = require('path');

function die(message, code = 1) {
  process.stderr.write(`run_model.js: ${message}\n`);
  process.exit(code);
}

// ---- .npy ----------------------------------------------------------------------------------

// A minimal .npy reader: versions 1-3, little-endian float32 ('<f4'), C order only.
function readNpy(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read ${file}: ${e.message}`);
  }
  const magic = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
  if (buf.length < 10 || !buf.subarray(0, 6).equals(magic)) throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  let headerLen;
  let offset;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    offset = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new Error(`${file}: truncated header`);
    headerLen = buf.readUInt32LE(8);
    offset = 12;
  } else {
    throw new Error(`${file}: unsupported .npy version ${major}`);
  }
  if (offset + headerLen > buf.length) throw new Error(`${file}: truncated header`);
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', offset, offset + headerLen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new Error(`${file}: malformed header ${JSON.stringify(header)}`);
  if (descr[1] !== '<f4') throw new Error(`${file}: dtype ${descr[1]}, want float32 ('<f4')`);
  if (fortran[1] !== 'False') throw new Error(`${file}: Fortran order; want C order`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => {
    if (!/^\d+$/.test(s)) throw new Error(`${file}: bad shape element ${s}`);
    return Number(s);
  });
  const count = dims.reduce((a, b) => a * b, 1);
  const start = offset + headerLen;
  if (buf.length - start !== count * 4) {
    throw new Error(`${file}: ${buf.length - start} data bytes, want ${count * 4} for shape (${dims.join(',')})`);
  }
  // Copy into an aligned buffer: a Float32Array needs its offset to be a multiple of 4.
  const data = new Float32Array(count);
  new Uint8Array(data.buffer).set(buf.subarray(start));
  return { dims, data };
}

function writeNpy(file, dims, data) {
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  // Magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(header.length, 8);
  const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'),
    Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength)]));
}

// ---- comparison ----------------------------------------------------------------------------

function compare(a, b) {
  if (a.length !== b.length) throw new Error(`outputs differ in size: ${a.length} vs ${b.length}`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  let maxAbs = 0;
  let refMax = 0;
  let nonfinite = 0;
  for (let i = 0; i < a.length; ++i) {
    const x = a[i];
    const y = b[i];
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      ++nonfinite;
      continue;
    }
    dot += x * y;
    na += x * x;
    nb += y * y;
    const d = Math.abs(x - y);
    if (d > maxAbs) maxAbs = d;
    if (Math.abs(x) > refMax) refMax = Math.abs(x);
  }
  return { dot, na, nb, maxAbs, refMax, nonfinite };
}

function cosineOf(s) {
  if (s.nonfinite > 0) return null;
  if (s.na === 0 && s.nb === 0) return 1; // both all zeros: identical
  if (s.na === 0 || s.nb === 0) return 0;
  return s.dot / Math.sqrt(s.na * s.nb);
}

// ---- main ----------------------------------------------------------------------------------

async function main() {
  const argv = process.argv.slice(2);
  let modules = process.env.ZEROPOINT_ORT_MODULES || '';
  let saveDir = null;
  const models = [];
  const inputs = [];
  for (let i = 0; i < argv.length; ++i) {
    const arg = argv[i];
    if (arg === '--modules' || arg === '--save-outputs') {
      if (i + 1 >= argv.length) die(`${arg} needs a value`, 2);
      if (arg === '--modules') modules = argv[++i];
      else saveDir = argv[++i];
    } else if (arg === '-h' || arg === '--help') {
      process.stdout.write('usage: run_model.js [--modules DIR] [--save-outputs DIR] FLOAT.onnx [QUANTIZED.onnx] INPUT.npy...\n');
      return;
    } else if (arg.startsWith('-')) {
      die(`unknown option ${arg}`, 2);
    } else if (arg.endsWith('.onnx')) {
      models.push(arg);
    } else if (arg.endsWith('.npy')) {
      inputs.push(arg);
    } else {
      die(`${arg}: neither a .onnx model nor a .npy input`, 2);
    }
  }
  if (models.length < 1 || models.length > 2) die('give the float model and, optionally, the quantized one', 2);
  if (inputs.length === 0) die('give at least one input .npy', 2);
  for (const f of [...models, ...inputs]) if (!fs.existsSync(f)) die(`${f}: no such file`);

  let ort;
  const where = modules ? path.join(path.resolve(modules), 'onnxruntime-node') : 'onnxruntime-node';
  try {
    ort = require(where);
  } catch (e) {
    die(`cannot load onnxruntime-node from ${where} (set ZEROPOINT_ORT_MODULES or --modules; ` +
        `scripts/setup-onnxruntime installs it): ${e.message.split('\n')[0]}`);
  }
  let ortVersion = null;
  try {
    ortVersion = require(path.join(where, 'package.json')).version;
  } catch (e) {
    // The version is informative only.
  }

  const sessions = [];
  for (const m of models) {
    try {
      sessions.push(await ort.InferenceSession.create(m, { logSeverityLevel: 3 }));
    } catch (e) {
      die(`${m}: ONNX Runtime cannot load it: ${e.message}`);
    }
  }
  for (let k = 0; k < sessions.length; ++k) {
    if (sessions[k].inputNames.length !== 1) {
      die(`${models[k]}: ${sessions[k].inputNames.length} inputs (${sessions[k].inputNames.join(', ')}); ` +
          'this script feeds single-input models only');
    }
  }
  if (saveDir) fs.mkdirSync(saveDir, { recursive: true });

  const samples = [];
  let total = { dot: 0, na: 0, nb: 0, maxAbs: 0, refMax: 0, nonfinite: 0 };
  let outName = null;
  let outShape = null;
  for (const file of inputs) {
    let x;
    try {
      x = readNpy(file);
    } catch (e) {
      die(e.message);
    }
    const outs = [];
    for (let k = 0; k < sessions.length; ++k) {
      const s = sessions[k];
      const feeds = { [s.inputNames[0]]: new ort.Tensor('float32', x.data, x.dims) };
      let result;
      try {
        result = await s.run(feeds);
      } catch (e) {
        die(`${models[k]} on ${file}: ONNX Runtime failed: ${e.message}`);
      }
      const name = s.outputNames[0];
      const t = result[name];
      if (!t || (t.type !== 'float32' && t.type !== 'float64')) {
        die(`${models[k]}: first output ${name} is ${t ? t.type : 'missing'}, want float32`);
      }
      outs.push({ name, dims: Array.from(t.dims), data: t.data });
    }
    if (outs.length === 2 && outs[0].dims.join(',') !== outs[1].dims.join(',')) {
      die(`${file}: output shapes differ: float [${outs[0].dims}] vs quantized [${outs[1].dims}]`);
    }
    outName = outs[0].name;
    outShape = outs[0].dims;
    if (saveDir) writeNpy(path.join(saveDir, path.basename(file)), outs[0].dims, outs[0].data);
    if (outs.length === 2) {
      const c = compare(outs[0].data, outs[1].data);
      total = { dot: total.dot + c.dot, na: total.na + c.na, nb: total.nb + c.nb,
                maxAbs: Math.max(total.maxAbs, c.maxAbs), refMax: Math.max(total.refMax, c.refMax),
                nonfinite: total.nonfinite + c.nonfinite };
      const sample = { input: path.basename(file), cosine: cosineOf(c), max_abs_diff: c.maxAbs };
      if (c.nonfinite > 0) sample.nonfinite = c.nonfinite;
      samples.push(sample);
    } else {
      samples.push({ input: path.basename(file), shape: outs[0].dims });
    }
  }

  const report = { output: outName, shape: outShape, ort_version: ortVersion, samples };
  if (sessions.length === 2) {
    const cosines = samples.map((s) => s.cosine);
    report.cosine_min = cosines.some((c) => c === null) ? null : Math.min(...cosines);
    report.cosine_all = cosineOf(total);
    report.max_abs_diff = total.maxAbs;
    report.float_abs_max = total.refMax;
    report.nonfinite = total.nonfinite;
  }
  process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((e) => die(e && e.stack ? e.stack : String(e)));
