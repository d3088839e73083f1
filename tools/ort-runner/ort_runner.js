#!/usr/bin/env node
// ort_runner.js — runs one ONNX model with onnxruntime-node for a parent process that talks to
// it over stdin/stdout (zp::OrtSession, include/zeropoint/ort_runner.hpp).
//
//   node ort_runner.js MODEL.onnx [--outputs a,b,... | --outputs '["a","b"]'] [--threads N]
//                      [--modules DIR] [--shared-fd FD --shared-bytes N]
//
// onnxruntime-node is loaded from DIR/onnxruntime-node when --modules is given, else through
// the usual require() search (NODE_PATH). --threads sets ORT's intra-op threads (0: ORT's
// default). --outputs picks the graph outputs to return, in that order (default: all of them);
// the JSON form is for names that contain commas. --shared-fd names a file descriptor the parent
// opened (a memfd it has mapped, N bytes of it): outputs then travel through that file instead of
// the pipe (see "Shared outputs" below).
//
// Protocol. Every message, both ways, is one frame:
//
//   u32 little-endian N | N bytes of UTF-8 JSON, the header | payload
//
// The payload is the raw bytes of the tensors the header lists, in the order listed, back to
// back, each exactly its "nbytes" long: C order, little-endian, float16 as IEEE binary16 bits,
// bool as one byte 0 or 1. A tensor's "dtype" is ONNX Runtime's element type name (float32,
// float64, float16, int8, uint8, int16, uint16, int32, uint32, int64, bool).
//
//   runner -> parent, once:  {"kind":"session","inputs":[M...],"outputs":[M...]}   no payload
//       M = {"name", "dtype" (null for a value that is not a tensor), "shape"}, where a shape
//       element is a number for a fixed dimension and a string (the symbolic name, maybe "")
//       for a dynamic one; "outputs" lists only the selected outputs, in the order returned.
//       If the model or onnxruntime-node does not load: {"kind":"error","message"}, then exit.
//   parent -> runner, per run: {"kind":"run","inputs":[{"name","dtype","shape","nbytes"}...]}
//       and the input tensors as payload. A uint8 tensor is accepted for a bool input.
//   runner -> parent, per run: for each selected output, in order,
//       {"kind":"tensor","name","dtype","shape","nbytes"} and that tensor as payload;
//       then {"kind":"end","run_ms"} (the time session.run took). If the run cannot be done
//       (unknown input name, wrong dtype or shape, ORT's own error) the answer is one
//       {"kind":"error","message"} frame instead, and the runner waits for the next request.
//   The parent closes stdin to end; the runner then exits 0.
//
// Shared outputs. With --shared-fd, an answer whose outputs fit writes their bytes into the
// shared file first, each at a 64-byte aligned offset, and then sends the tensor headers with an
// "offset" field and no payload: {"kind":"tensor","name","dtype","shape","nbytes","offset"}. The
// bytes of one answer lie in [start, end) of the file; the next answer's range never overlaps
// the previous answer's (it starts at 0 when it fits below it, else right after it), so the
// parent may go on reading one answer's outputs while the next request runs. When an answer
// does not fit in N bytes that way, its tensors come through the pipe as usual. The shared
// file only grows (ftruncate), so what the parent has been told about stays readable.
//
// The runner reads a whole request before it runs the model and writes anything, and writes
// the whole answer before it reads again: a parent that writes a whole request and then reads
// the whole answer can never deadlock with it, whatever the pipes' capacity.
//
// Nothing else may reach stdout: console.log and friends are sent to stderr, where the parent
// keeps them for its error messages.
'use strict';

const fs = require('fs');
const path = require('path');

const STDIN = 0;
const STDOUT = 1;
// A header larger than this is not one we wrote: the stream is out of step.
const MAX_HEADER_BYTES = 16 << 20;

for (const method of ['log', 'info', 'debug', 'dir', 'table']) console[method] = console.error;

// Typed array for each element type that can cross the pipe; bool travels as uint8 bytes.
const TYPED_ARRAYS = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  bool: Uint8Array,
};

class ProtocolError extends Error {}

function parseArgs(argv) {
  const args = { model: undefined, outputs: undefined, threads: 0, modules: undefined, sharedFd: undefined, sharedBytes: 0 };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--outputs') {
      const v = value();
      args.outputs = v.startsWith('[') ? JSON.parse(v) : v.split(',').filter((s) => s.length > 0);
    } else if (a === '--threads') {
      args.threads = Number(value());
      if (!Number.isInteger(args.threads) || args.threads < 0) throw new Error(`--threads: not a count: ${argv[i]}`);
    } else if (a === '--modules') {
      args.modules = value();
    } else if (a === '--shared-fd' || a === '--shared-bytes') {
      const n = Number(value());
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${a}: not a count: ${argv[i]}`);
      if (a === '--shared-fd') args.sharedFd = n;
      else args.sharedBytes = n;
    } else if (a.startsWith('--')) {
      throw new Error(`unknown option ${a}`);
    } else if (args.model === undefined) {
      args.model = a;
    } else {
      throw new Error(`unexpected argument ${a}`);
    }
  }
  if (args.model === undefined) {
    throw new Error('usage: node ort_runner.js MODEL.onnx [--outputs a,b] [--threads N] [--modules DIR] [--shared-fd FD --shared-bytes N]');
  }
  if ((args.sharedFd === undefined) !== (args.sharedBytes === 0)) throw new Error('--shared-fd and --shared-bytes go together');
  return args;
}

// ---------------------------------------------------------------------------------------------
// Blocking I/O on the raw descriptors: the runner does one thing at a time, and going around
// process.stdin/stdout avoids their extra buffering and copies.

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

// Descriptors are blocking as the parent creates them, but if anything in the process made one
// non-blocking, wait a little and retry rather than fail.
function retryingEagain(fn) {
  for (;;) {
    try {
      return fn();
    } catch (e) {
      if (e.code !== 'EAGAIN' && e.code !== 'EINTR') throw e;
      Atomics.wait(sleepCell, 0, 0, 1);
    }
  }
}

// Fills buf from stdin. Returns false at end of input before the first byte when eofAllowed;
// end of input anywhere else is a ProtocolError.
function readFully(buf, eofAllowed) {
  let done = 0;
  while (done < buf.length) {
    const n = retryingEagain(() => fs.readSync(STDIN, buf, done, buf.length - done, null));
    if (n === 0) {
      if (done === 0 && eofAllowed) return false;
      throw new ProtocolError(`input ended inside a frame (${done} of ${buf.length} bytes)`);
    }
    done += n;
  }
  return true;
}

function writeFully(buffers) {
  let pending = buffers.filter((b) => b.length > 0);
  while (pending.length > 0) {
    let n = retryingEagain(() => fs.writevSync(STDOUT, pending));
    while (n > 0 && n >= pending[0].length) n -= pending.shift().length;
    if (n > 0) pending[0] = pending[0].subarray(n);
  }
}

// Returns the header of the next frame, or null at end of input.
function readHeader() {
  const prefix = Buffer.allocUnsafe(4);
  if (!readFully(prefix, true)) return null;
  const n = prefix.readUInt32LE(0);
  if (n > MAX_HEADER_BYTES) throw new ProtocolError(`a header of ${n} bytes`);
  const text = Buffer.allocUnsafe(n);
  readFully(text, false);
  try {
    return JSON.parse(text.toString('utf8'));
  } catch (e) {
    throw new ProtocolError(`a header that is not JSON: ${e.message}`);
  }
}

// The buffers of one frame: length prefix, header, payloads.
function frame(header, payloads = []) {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.allocUnsafe(4);
  prefix.writeUInt32LE(json.length, 0);
  return [prefix, json, ...payloads];
}

function writeFrame(header, payloads = []) {
  writeFully(frame(header, payloads));
}

function sendError(message) {
  writeFrame({ kind: 'error', message });
}

// ---------------------------------------------------------------------------------------------

function describe(metadata) {
  return metadata.map((m) => ({
    name: m.name,
    dtype: m.isTensor ? m.type : null,
    shape: m.isTensor ? m.shape : [],
  }));
}

function shapeText(shape) {
  return `[${shape.join(', ')}]`;
}

function elementCount(shape) {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// Reads one request's payload (so the stream stays in step even when the request is refused),
// then checks it against the model and returns the feeds, or throws an Error for the parent.
// The last buffer each input arrived in. ORT holds no input after a run, so the next request of
// the same size reuses it: calibration sends batches of one shape, and fresh memory costs page
// faults on every run.
const inputBuffers = new Map();

function inputBuffer(name, nbytes) {
  let data = inputBuffers.get(name);
  if (data === undefined || data.length !== nbytes) {
    // A buffer of its own per tensor: its memory is aligned for any typed array, and ORT reads
    // it in place.
    data = Buffer.allocUnsafeSlow(nbytes);
    if (typeof name === 'string') inputBuffers.set(name, data);
  }
  return data;
}

function readRequest(header, inputMeta) {
  if (header.kind !== 'run' || !Array.isArray(header.inputs)) throw new ProtocolError(`a request of kind ${header.kind}`);
  const tensors = [];
  const seen = new Set();
  for (const t of header.inputs) {
    if (!Number.isSafeInteger(t.nbytes) || t.nbytes < 0) throw new ProtocolError(`input '${t.name}' with nbytes ${t.nbytes}`);
    // A name given twice is refused below; its second copy must not overwrite the first's buffer.
    const data = seen.has(t.name) ? Buffer.allocUnsafeSlow(t.nbytes) : inputBuffer(t.name, t.nbytes);
    seen.add(t.name);
    readFully(data, false);
    tensors.push({ ...t, data });
  }

  const feeds = {};
  for (const t of tensors) {
    const meta = inputMeta.get(t.name);
    if (meta === undefined) {
      throw new Error(`the model has no input '${t.name}' (its inputs: ${[...inputMeta.keys()].join(', ')})`);
    }
    if (t.name in feeds) throw new Error(`input '${t.name}' given twice`);
    if (!meta.isTensor) throw new Error(`input '${t.name}' is not a tensor in the model; only tensors can be fed`);
    let dtype = t.dtype;
    if (dtype === 'uint8' && meta.type === 'bool') dtype = 'bool';
    const Typed = TYPED_ARRAYS[dtype];
    if (Typed === undefined) throw new Error(`input '${t.name}': unknown element type ${t.dtype}`);
    if (dtype !== meta.type) throw new Error(`input '${t.name}' is ${t.dtype}, but the model wants ${meta.type}`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`input '${t.name}': bad shape ${JSON.stringify(t.shape)}`);
    }
    // ORT checks shapes too, but its message does not name the input.
    const want = meta.shape;
    if (want.length > 0 &&
        (want.length !== t.shape.length || want.some((d, i) => typeof d === 'number' && d !== t.shape[i]))) {
      throw new Error(`input '${t.name}' has shape ${shapeText(t.shape)}, but the model wants ${shapeText(want)}`);
    }
    const count = elementCount(t.shape);
    if (count * Typed.BYTES_PER_ELEMENT !== t.nbytes) {
      throw new Error(`input '${t.name}': ${t.nbytes} bytes for shape ${shapeText(t.shape)} of ${t.dtype}`);
    }
    feeds[t.name] = new ort.Tensor(dtype, new Typed(t.data.buffer, t.data.byteOffset, count), t.shape);
  }
  for (const name of inputMeta.keys()) {
    if (!(name in feeds)) throw new Error(`input '${name}' was not given`);
  }
  return feeds;
}

// Where the answers go in the shared file: [start, end) of the previous answer's bytes, which the
// parent may still be reading, and the file's size so far.
class SharedOutputs {
  constructor(fd, capacity) {
    this.fd = fd;
    this.capacity = capacity;
    this.previous = { start: 0, end: 0 };
    this.size = 0;
  }

  // Writes the buffers and returns their offsets, or null when they do not fit beside the
  // previous answer or the file cannot take them (out of memory): they then go through the pipe,
  // and nothing of the previous answer has been touched, since the parent may still read it.
  place(buffers) {
    const align = (n) => Math.ceil(n / 64) * 64;
    const total = buffers.reduce((sum, b) => sum + align(b.length), 0);
    let start;
    if (total <= this.previous.start) start = 0;
    else if (align(this.previous.end) + total <= this.capacity) start = align(this.previous.end);
    else return null;
    const offsets = [];
    let at = start;
    for (const b of buffers) {
      offsets.push(at);
      at += align(b.length);
    }
    try {
      if (at > this.size) {
        fs.ftruncateSync(this.fd, at);
        this.size = at;
      }
      buffers.forEach((b, i) => {
        for (let done = 0; done < b.length;) {
          done += retryingEagain(() => fs.writeSync(this.fd, b, done, b.length - done, offsets[i] + done));
        }
      });
    } catch (e) {
      return null;
    }
    this.previous = { start, end: at };
    return offsets;
  }

  // An answer that went through the pipe: the parent reads nothing of the file for it.
  skip() {
    this.previous = { start: 0, end: 0 };
  }
}

let ort;

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    sendError(`ort_runner.js: ${e.message}`);
    return 2;
  }
  const where = args.modules === undefined ? 'onnxruntime-node' : path.resolve(args.modules, 'onnxruntime-node');
  try {
    ort = require(where);
  } catch (e) {
    sendError(`cannot load ${where}: ${e.message.split('\n')[0]}; run scripts/setup-onnxruntime`);
    return 1;
  }

  let session;
  try {
    const options = { executionProviders: ['cpu'] };
    if (args.threads > 0) options.intraOpNumThreads = args.threads;
    session = await ort.InferenceSession.create(args.model, options);
  } catch (e) {
    sendError(`the model does not load: ${e.message}`);
    return 1;
  }

  const outputMeta = new Map(session.outputMetadata.map((m) => [m.name, m]));
  const outputs = args.outputs ?? session.outputNames;
  for (const name of outputs) {
    if (!outputMeta.has(name)) {
      sendError(`the model has no output '${name}' (its outputs: ${session.outputNames.join(', ')})`);
      return 1;
    }
  }
  const inputMeta = new Map(session.inputMetadata.map((m) => [m.name, m]));
  const shared = args.sharedFd === undefined ? null : new SharedOutputs(args.sharedFd, args.sharedBytes);
  writeFrame({
    kind: 'session',
    inputs: describe(session.inputMetadata),
    outputs: describe(outputs.map((name) => outputMeta.get(name))),
  });

  for (;;) {
    const header = readHeader();
    if (header === null) return 0;
    let feeds;
    try {
      feeds = readRequest(header, inputMeta);
    } catch (e) {
      if (e instanceof ProtocolError) throw e;
      sendError(e.message);
      continue;
    }

    let results;
    const start = process.hrtime.bigint();
    try {
      results = await session.run(feeds, outputs);
    } catch (e) {
      sendError(`run failed: ${e.message}`);
      continue;
    }
    const runMs = Number(process.hrtime.bigint() - start) / 1e6;

    const problem = outputs.find((name) => TYPED_ARRAYS[results[name]?.type] === undefined);
    if (problem !== undefined) {
      sendError(`output '${problem}' is ${results[problem]?.type ?? 'not a tensor'}, which cannot be returned`);
      continue;
    }
    const buffers = outputs.map((name) => {
      const d = results[name].data;
      return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    });
    const offsets = shared === null ? null : shared.place(buffers);
    if (offsets === null) shared?.skip();
    // The whole answer in one gathered write.
    const answer = outputs.flatMap((name, i) => {
      const t = results[name];
      const header = { kind: 'tensor', name, dtype: t.type, shape: t.dims, nbytes: buffers[i].length };
      return offsets === null ? frame(header, [buffers[i]]) : frame({ ...header, offset: offsets[i] });
    });
    writeFully([...answer, ...frame({ kind: 'end', run_ms: runMs })]);
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    // The stream is out of step (or a bug): say so on stderr, where the parent looks when the
    // runner dies, and leave.
    process.stderr.write(`ort_runner.js: ${e instanceof ProtocolError ? 'protocol error: ' : ''}${e.stack ?? e}\n`);
    process.exit(3);
  },
);
