// Raw-TCP ring all-reduce reference (f32 sum): the baseline that `npm run bench:peers` compares
// ringswarm's WebSocket ring against. Plain Node: node:net, node:child_process, a tiny
// WebAssembly SIMD add. No WebSocket, no framing: both ends of every link know the schedule, so
// the stream carries only payload bytes.
//
//   node dist/scripts/raw-tcp-ring.js --ranks 4 --sizes 8,1MiB,64MiB --iters 10 --warmup 3 --json
//
// The parent forks N children (this file, `--child`), all on 127.0.0.1. Each child listens on an
// ephemeral port; the parent gathers the ports over IPC and tells each child its neighbour's port.
// Rank r sends to r+1 and receives from r-1. (The receiving end of each link is the socket that
// *connects*, so that it can read with `onread` into a fixed buffer inside WebAssembly memory;
// a server-accepted socket cannot take `onread`. So each child connects to its predecessor, which
// then sends on the accepted socket.)
//
// Algorithm: ring reduce-scatter (N-1 steps) then all-gather (N-1 steps) over N segments (uneven
// sizes: the first count % N segments get one extra element). Seen from one rank, the 2(N-1) steps
// form a single pipeline: what it sends at step t+1 is exactly what it received at step t (reduced
// into, or copied into, its own buffer). Every segment is cut into chunks (--chunk, 1 MiB): as soon
// as chunk j of step t has been received and reduced, chunk j of step t+1 is written. Received
// bytes are reduced straight into the rank's Float32Array as they arrive, whatever the split of
// reads (partial elements are carried across reads).
//
// Writes send views of the rank's own buffer, never copies. That is safe because a region is only
// overwritten (all-gather) after the predecessor has received, through the ring, bytes that this
// rank wrote later in the same stream than its last write of that region; and an op only
// completes once every write callback has fired, before the buffer is refilled for the next one.
// At most --inflight writes are queued in the socket at once (backpressure).
//
// Timing: the parent is the barrier. It sends "run" to every child and waits for every "done";
// each child times from receiving "run" (after refilling its input, outside the timing) to the end
// of its op (all bytes received and reduced, all writes flushed). Time of an iteration = max over
// ranks; the row reports the median over timed iterations. Inputs are small integers depending on
// rank and index, so the sum is exact and every element of every iteration is checked.
//
// Output: with --json one JSON object on stdout:
//   { ranks, rows: [{ bytes, timeUs, algbwGBps, busbwGBps, wrong }] }
// (nccl-tests definitions: algbw = bytes / time, busbw = algbw * 2(n-1)/n, GB = 1e9 bytes),
// else a small table. Exit codes: 0 ok (even with wrong > 0: read `wrong`), 1 error,
// 2 usage, 124 global timeout, 130/143 interrupted.

import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------------------------
// Options

type RecvMode = 'onread' | 'data';
type AddMode = 'wasm' | 'js';

interface Options {
  ranks: number;
  sizes: number[];
  iters: number;
  warmup: number;
  json: boolean;
  chunk: number;
  inflight: number;
  recvBuf: number;
  recv: RecvMode;
  add: AddMode;
  timeoutS: number;
  verify: boolean;
  verbose: boolean;
}

const USAGE = `usage: node dist/scripts/raw-tcp-ring.js [options]
  --ranks N          number of ranks (processes), default 4
  --sizes LIST       comma-separated byte sizes (suffixes K/KiB, M/MiB, G/GiB = powers of 1024),
                     multiples of 4; default 8,1048576,67108864
  --iters K          timed iterations per size, default 10
  --warmup W         untimed iterations per size, default 3
  --json             print one JSON object instead of a table
  --chunk BYTES      pipeline chunk, default 1MiB
  --inflight K       writes queued in a socket at once, default 2
  --recv-buf BYTES   size of each read (onread buffer), default 1MiB
  --recv MODE        onread (read into WebAssembly memory) | data ('data' events + copy), default onread
  --add MODE         wasm (SIMD) | js (plain loop), default wasm
  --no-verify        skip checking results (wrong is then reported as 0)
  --timeout S        global timeout in seconds, default 120
  --verbose          print every iteration's per-rank times to stderr
`;

function parseSize(text: string): number {
  const m = /^(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`bad size '${text}'`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const mult = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 ** 2 : unit.startsWith('g') ? 1024 ** 3 : 1;
  return Number(m[1]) * mult;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options & { child: boolean; rank: number; maxBytes: number } {
  const o = {
    ranks: 4,
    sizes: [8, 1048576, 67108864],
    iters: 10,
    warmup: 3,
    json: false,
    chunk: 1 << 20,
    inflight: 2,
    recvBuf: 1 << 20,
    recv: 'onread' as RecvMode,
    add: 'wasm' as AddMode,
    timeoutS: 120,
    verify: true,
    verbose: false,
    child: false,
    rank: -1,
    maxBytes: 0,
  };
  const int = (name: string, v: string | undefined, min: number): number => {
    if (v === undefined || !/^\d+$/.test(v)) throw new UsageError(`${name} needs an integer`);
    const n = Number(v);
    if (n < min) throw new UsageError(`${name} must be >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string | undefined => argv[++i];
    switch (a) {
      case '--ranks': o.ranks = int(a, next(), 1); break;
      case '--sizes': {
        const v = next();
        if (v === undefined) throw new UsageError('--sizes needs a list');
        o.sizes = v.split(',').filter((s) => s.trim() !== '').map(parseSize);
        break;
      }
      case '--iters': o.iters = int(a, next(), 1); break;
      case '--warmup': o.warmup = int(a, next(), 0); break;
      case '--json': o.json = true; break;
      case '--chunk': o.chunk = parseSize(next() ?? ''); break;
      case '--inflight': o.inflight = int(a, next(), 1); break;
      case '--recv-buf': o.recvBuf = parseSize(next() ?? ''); break;
      case '--recv': {
        const v = next();
        if (v !== 'onread' && v !== 'data') throw new UsageError('--recv is onread or data');
        o.recv = v;
        break;
      }
      case '--add': {
        const v = next();
        if (v !== 'wasm' && v !== 'js') throw new UsageError('--add is wasm or js');
        o.add = v;
        break;
      }
      case '--no-verify': o.verify = false; break;
      case '--verbose': o.verbose = true; break;
      case '--timeout': o.timeoutS = int(a, next(), 1); break;
      case '--child': o.child = true; break;
      case '--rank': o.rank = int(a, next(), 0); break;
      case '--max-bytes': o.maxBytes = int(a, next(), 0); break;
      case '-h':
      case '--help':
        process.stdout.write(USAGE);
        process.exit(0);
        break;
      default:
        throw new UsageError(`unknown argument '${a}'`);
    }
  }
  if (o.sizes.length === 0) throw new UsageError('no sizes');
  for (const s of o.sizes) if (s % 4 !== 0) throw new UsageError(`size ${s} is not a multiple of 4 (f32)`);
  if (o.chunk < 4 || o.chunk % 4 !== 0) throw new UsageError('--chunk must be a positive multiple of 4');
  if (o.recvBuf < 4) throw new UsageError('--recv-buf must be >= 4');
  return o;
}

// ---------------------------------------------------------------------------------------------
// Ring math (kept local so this reference shares no code with the implementation it judges)

const mod = (a: number, n: number): number => ((a % n) + n) % n;

function segment(count: number, parts: number, k: number): { offset: number; count: number } {
  const base = Math.floor(count / parts);
  const extra = count % parts;
  return { offset: k * base + Math.min(k, extra), count: base + (k < extra ? 1 : 0) };
}

/** Input of `rank` at element `i`: a small integer, so any summation order is exact. */
function inputValue(rank: number, i: number): number {
  return ((i * 7 + rank * 3) % 17) + rank + 1;
}
const PERIOD = 17;

/** Fill `arr` with the period-17 pattern `f(i % 17)` at memcpy speed (doubling copies). */
function fillPeriodic(arr: Float32Array, f: (i: number) => number): void {
  const first = Math.min(PERIOD, arr.length);
  for (let i = 0; i < first; i++) arr[i] = f(i);
  let filled = first;
  // Copy whole periods only, so index i always holds f(i % PERIOD).
  while (filled < arr.length) {
    const periods = Math.floor(filled / PERIOD) * PERIOD;
    const n = Math.min(periods, arr.length - filled);
    arr.copyWithin(filled, 0, n);
    filled += n;
  }
}

// ---------------------------------------------------------------------------------------------
// WebAssembly is built into Node, but this project's type libraries (ES2022 + @types/node) do not
// declare it; a minimal typed handle on the global, scoped to this module.
interface WasmApi {
  Memory: new (d: { initial: number }) => { buffer: ArrayBuffer };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const WebAssembly = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

// WebAssembly SIMD add: add(dst, src, n) does f32 dst[i] += src[i] for n elements, byte
// addresses, src may be unaligned. 16 floats per iteration (4 x f32x4), then a scalar tail.

function wasmAddModule(): Uint8Array {
  const u32 = (n: number): number[] => {
    const out: number[] = [];
    do {
      let b = n & 0x7f;
      n >>>= 7;
      if (n !== 0) b |= 0x80;
      out.push(b);
    } while (n !== 0);
    return out;
  };
  const section = (id: number, body: number[]): number[] => [id, ...u32(body.length), ...body];
  const name = (s: string): number[] => [...u32(s.length), ...Buffer.from(s, 'utf8')];
  const LG = 0x20, LS = 0x21, I32C = 0x41, ADD = 0x6a, SHL = 0x74, SHRU = 0x76, GEU = 0x4f;
  const BLOCK = 0x02, LOOP = 0x03, BR = 0x0c, BRIF = 0x0d, END = 0x0b, VOID = 0x40;
  const v128load = (off: number): number[] => [0xfd, 0x00, 0x00, ...u32(off)];
  const v128store = (off: number): number[] => [0xfd, 0x0b, 0x00, ...u32(off)];
  const f32x4add = [0xfd, 0xe4, 0x01];
  const vec: number[] = [];
  for (const off of [0, 16, 32, 48]) {
    vec.push(LG, 0, LG, 0, ...v128load(off), LG, 1, ...v128load(off), ...f32x4add, ...v128store(off));
  }
  // params: 0 dst, 1 src, 2 n; locals: 3 end, 4 vend
  const body = [
    1, 2, 0x7f, // two i32 locals
    LG, 0, LG, 2, I32C, 4, SHRU, I32C, 6, SHL, ADD, LS, 4, // vend = dst + (n >> 4) * 64
    LG, 0, LG, 2, I32C, 2, SHL, ADD, LS, 3, // end = dst + n * 4
    BLOCK, VOID, LOOP, VOID,
    LG, 0, LG, 4, GEU, BRIF, 1,
    ...vec,
    LG, 0, I32C, 0xc0, 0x00, ADD, LS, 0, // dst += 64
    LG, 1, I32C, 0xc0, 0x00, ADD, LS, 1, // src += 64
    BR, 0, END, END,
    BLOCK, VOID, LOOP, VOID,
    LG, 0, LG, 3, GEU, BRIF, 1,
    LG, 0, LG, 0, 0x2a, 0x00, 0x00, LG, 1, 0x2a, 0x00, 0x00, 0x92, 0x38, 0x00, 0x00, // f32 store(dst, load dst + load src)
    LG, 0, I32C, 4, ADD, LS, 0,
    LG, 1, I32C, 4, ADD, LS, 1,
    BR, 0, END, END,
    END,
  ];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 3, 0x7f, 0x7f, 0x7f, 0]), // type: (i32 i32 i32) -> ()
    ...section(2, [1, ...name('env'), ...name('mem'), 0x02, 0x00, 0x01]), // import memory, min 1 page
    ...section(3, [1, 0]), // one function of type 0
    ...section(7, [1, ...name('add'), 0x00, 0]), // export "add"
    ...section(10, [1, ...u32(body.length), ...body]),
  ];
  return new Uint8Array(bytes);
}

// ---------------------------------------------------------------------------------------------
// Child: one rank

type ToChild =
  | { cmd: 'peer'; predPort: number }
  | { cmd: 'prepare'; bytes: number }
  | { cmd: 'run'; iter: number }
  | { cmd: 'exit' };

type FromChild =
  | { type: 'listening'; rank: number; port: number }
  | { type: 'connected'; rank: number }
  | { type: 'ready'; rank: number }
  | { type: 'done'; rank: number; iter: number; us: number; wrong: number }
  | { type: 'error'; rank: number; message: string };

function childMain(o: ReturnType<typeof parseArgs>): void {
  const send = (m: FromChild): void => {
    if (!process.connected) process.exit(1); // parent gone: nobody to report to
    process.send!(m, undefined, undefined, (err: Error | null) => {
      if (err) process.exit(1);
    });
  };
  const die = (err: unknown): never => {
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    try {
      send({ type: 'error', rank: o.rank, message });
    } catch {
      /* parent gone */
    }
    process.stderr.write(`raw-tcp-ring rank ${o.rank}: ${message}\n`);
    process.exit(1);
  };
  process.on('uncaughtException', die);
  process.on('disconnect', () => process.exit(1)); // parent gone: never linger
  // Ctrl-C reaches the whole process group; the parent does the cleanup and kills us.
  process.on('SIGINT', () => {});

  const N = o.ranks;
  const rank = o.rank;
  const C = o.chunk;
  const T = 2 * (N - 1); // receive steps
  const align64 = (n: number): number => Math.ceil(n / 64) * 64;

  // Memory layout (byte addresses in WebAssembly memory): data | stage | stage2 | scratch.
  const DATA = 0;
  const STAGE = align64(Math.max(o.maxBytes, 4));
  const STAGE2 = STAGE + align64(o.recvBuf);
  const SCRATCH = STAGE2 + align64(o.recvBuf);
  const TEST = SCRATCH + 64;
  const total = TEST + 512;
  // Allocated once, never grown: a grown memory detaches the buffer that pending writes view.
  const memory = new WebAssembly.Memory({ initial: Math.ceil(total / 65536) });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(wasmAddModule()), { env: { mem: memory } });
  const wasmAdd = instance.exports.add as (dst: number, src: number, n: number) => void;
  const u8 = new Uint8Array(memory.buffer);
  const f32 = new Float32Array(memory.buffer);

  const jsAdd = (dst: number, src: number, n: number): void => {
    if (src & 3) {
      u8.copyWithin(STAGE2, src, src + 4 * n); // a Float32Array view needs alignment
      src = STAGE2;
    }
    const d = dst >>> 2;
    const s = src >>> 2;
    for (let i = 0; i < n; i++) f32[d + i] += f32[s + i];
  };
  const add = o.add === 'wasm' ? wasmAdd : jsAdd;

  // Self-test of the adder on awkward lengths and an unaligned source.
  {
    const n = 37;
    const dst = TEST >>> 2;
    const src = TEST + 256 + 1;
    for (let i = 0; i < n; i++) {
      f32[dst + i] = i;
      new DataView(memory.buffer).setFloat32(src + 4 * i, 2 * i, true);
    }
    const probe = o.add === 'wasm' ? wasmAdd : (d: number, s: number, k: number): void => {
      const tmp = new Float32Array(k);
      for (let i = 0; i < k; i++) tmp[i] = new DataView(memory.buffer).getFloat32(s + 4 * i, true);
      for (let i = 0; i < k; i++) f32[(d >>> 2) + i] += tmp[i];
    };
    probe(TEST, src, n);
    for (let i = 0; i < n; i++) if (f32[dst + i] !== 3 * i) die(new Error(`adder self-test failed at ${i}`));
  }

  // Per-size state
  let count = 0;
  let segs: { addr: number; len: number }[] = [];
  let template = new Float32Array(0);
  let expected = new Float32Array(0);

  // Per-op state
  let active = false;
  let t = 0; // current receive step
  let pos = 0; // bytes of the current step's segment received
  let fwdChunk = 0; // next chunk of the current segment to forward
  const queue: number[] = []; // pending writes: addr, len, addr, len...
  let qHead = 0;
  let inflight = 0;
  let t0 = 0;
  let iter = -1;
  const pending: Uint8Array[] = []; // bytes of the next op that arrived before its "run"

  const recvSeg = (s: number): number => (s < N - 1 ? mod(rank - s - 1, N) : mod(rank - (s - (N - 1)), N));
  const sendSeg = (s: number): number => (s < N - 1 ? mod(rank - s, N) : mod(rank + 1 - (s - (N - 1)), N));

  let sendSock: net.Socket | null = null;
  let recvSock: net.Socket | null = null;

  const onWritten = (err?: Error | null): void => {
    if (err) die(err);
    inflight--;
    flush();
    maybeDone();
  };
  function flush(): void {
    while (qHead < queue.length && inflight < o.inflight) {
      const addr = queue[qHead++];
      const len = queue[qHead++];
      inflight++;
      sendSock!.write(new Uint8Array(memory.buffer, addr, len), onWritten);
    }
    if (qHead === queue.length && qHead > 0) {
      queue.length = 0;
      qHead = 0;
    }
  }
  function enqueueChunks(seg: { addr: number; len: number }, from: number, upTo: number): number {
    let j = from;
    while (j * C < seg.len) {
      const start = j * C;
      const end = Math.min(start + C, seg.len);
      if (upTo < end) break;
      queue.push(seg.addr + start, end - start);
      j++;
    }
    return j;
  }
  const skipEmpty = (): void => {
    while (t < T && segs[recvSeg(t)].len === 0) t++;
  };

  function consume(src: number, n: number): void {
    let p = 0;
    while (p < n) {
      if (t >= T) throw new Error(`${n - p} bytes received after the end of the op`);
      const seg = segs[recvSeg(t)];
      const reduce = t < N - 1;
      let k = Math.min(seg.len - pos, n - p);
      const partial = pos & 3;
      if (partial !== 0) {
        const m = Math.min(4 - partial, k);
        u8.copyWithin(SCRATCH + partial, src + p, src + p + m);
        pos += m;
        p += m;
        k -= m;
        if ((pos & 3) === 0) {
          if (reduce) add(seg.addr + pos - 4, SCRATCH, 1);
          else u8.copyWithin(seg.addr + pos - 4, SCRATCH, SCRATCH + 4);
        }
      }
      const whole = k & ~3;
      if (whole > 0) {
        if (reduce) add(seg.addr + pos, src + p, whole >>> 2);
        else u8.copyWithin(seg.addr + pos, src + p, src + p + whole);
        pos += whole;
        p += whole;
        k -= whole;
      }
      if (k > 0) {
        u8.copyWithin(SCRATCH, src + p, src + p + k);
        pos += k;
        p += k;
      }
      // What was received at step t is sent at step t+1 (the same segment, chunk by chunk).
      if (t + 1 < T) {
        const before = fwdChunk;
        fwdChunk = enqueueChunks(seg, fwdChunk, pos);
        if (fwdChunk !== before) flush();
      }
      if (pos === seg.len) {
        t++;
        pos = 0;
        fwdChunk = 0;
        skipEmpty();
      }
    }
  }

  function consumeBytes(b: Uint8Array): void {
    for (let off = 0; off < b.length; off += o.recvBuf) {
      const piece = b.subarray(off, Math.min(off + o.recvBuf, b.length));
      u8.set(piece, STAGE);
      consume(STAGE, piece.length);
    }
  }

  function maybeDone(): void {
    if (!active || t < T || inflight > 0 || qHead < queue.length) return;
    const us = (performance.now() - t0) * 1000;
    active = false;
    let wrong = 0;
    if (o.verify) {
      const base = DATA >>> 2;
      for (let i = 0; i < count; i++) if (f32[base + i] !== expected[i]) wrong++;
    }
    send({ type: 'done', rank, iter, us, wrong });
  }

  function startOp(): void {
    f32.set(template, DATA >>> 2); // fresh input, outside the timing
    t0 = performance.now();
    t = 0;
    pos = 0;
    fwdChunk = 0;
    active = true;
    if (T > 0) {
      skipEmpty();
      // Step 0 sends this rank's own segment: it is not written again until the all-gather.
      enqueueChunks(segs[sendSeg(0)], 0, Infinity);
      flush();
      if (pending.length > 0) {
        const early = pending.splice(0, pending.length);
        for (const b of early) consumeBytes(b);
      }
    }
    maybeDone();
  }

  function prepare(bytes: number): void {
    if (bytes > o.maxBytes) throw new Error(`size ${bytes} > max ${o.maxBytes}`);
    count = bytes / 4;
    segs = [];
    for (let k = 0; k < N; k++) {
      const s = segment(count, N, k);
      segs.push({ addr: DATA + s.offset * 4, len: s.count * 4 });
    }
    template = new Float32Array(count);
    fillPeriodic(template, (i) => inputValue(rank, i));
    expected = new Float32Array(count);
    fillPeriodic(expected, (i) => {
      let sum = 0;
      for (let r = 0; r < N; r++) sum += inputValue(r, i);
      return sum;
    });
  }

  let connected = 0;
  const oneConnected = (): void => {
    if (++connected === 2) send({ type: 'connected', rank });
  };

  const server = net.createServer({ noDelay: true });
  server.on('error', die);
  server.once('connection', (sock) => {
    sendSock = sock;
    sock.setNoDelay(true);
    sock.on('error', die);
    sock.on('data', () => die(new Error('unexpected data on the sending socket')));
    server.close();
    oneConnected();
  });
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address() as net.AddressInfo;
    send({ type: 'listening', rank, port: addr.port });
  });

  function connectPred(port: number): void {
    const onBytes = (b: Uint8Array): void => {
      if (!active) pending.push(b);
      else consumeBytes(b);
    };
    const opts: net.NetConnectOpts = { host: '127.0.0.1', port, noDelay: true };
    if (o.recv === 'onread') {
      opts.onread = {
        buffer: u8.subarray(STAGE, STAGE + o.recvBuf),
        callback: (nread: number): boolean => {
          if (!active) pending.push(u8.slice(STAGE, STAGE + nread)); // copy: the buffer is reused
          else consume(STAGE, nread);
          maybeDone();
          return true;
        },
      };
    }
    const sock = net.connect(opts);
    recvSock = sock;
    sock.on('error', die);
    if (o.recv === 'data') {
      sock.on('data', (b: Buffer) => {
        onBytes(b);
        maybeDone();
      });
    }
    sock.once('connect', () => {
      sock.setNoDelay(true);
      oneConnected();
    });
  }

  process.on('message', (raw) => {
    const m = raw as ToChild;
    switch (m.cmd) {
      case 'peer':
        connectPred(m.predPort);
        break;
      case 'prepare':
        prepare(m.bytes);
        send({ type: 'ready', rank });
        break;
      case 'run':
        iter = m.iter;
        startOp();
        break;
      case 'exit':
        recvSock?.destroy();
        sendSock?.destroy();
        process.exit(0);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Parent

interface Row {
  bytes: number;
  timeUs: number;
  algbwGBps: number;
  busbwGBps: number;
  wrong: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function parentMain(o: ReturnType<typeof parseArgs>): Promise<void> {
  const N = o.ranks;
  const maxBytes = Math.max(...o.sizes);
  const children: ChildProcess[] = [];
  let finished = false;

  const killAll = (): void => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        try {
          c.kill('SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
  };
  const fail = (code: number, msg: string): never => {
    finished = true;
    process.stderr.write(`raw-tcp-ring: ${msg}\n`);
    killAll();
    process.exit(code);
  };
  process.on('exit', killAll);
  process.on('SIGINT', () => fail(130, 'interrupted'));
  process.on('SIGTERM', () => fail(143, 'terminated'));
  process.on('SIGHUP', () => fail(129, 'hangup'));
  const timer = setTimeout(() => fail(124, `global timeout of ${o.timeoutS} s reached; killed all ranks`), o.timeoutS * 1000);

  // Per-child inbox: messages are consumed in order by `next`.
  const inbox: FromChild[][] = [];
  const waiters: ((m: FromChild) => void)[][] = [];
  const next = (r: number): Promise<FromChild> =>
    new Promise((resolve) => {
      const q = inbox[r];
      if (q.length > 0) resolve(q.shift()!);
      else waiters[r].push(resolve);
    });
  const all = async <K extends FromChild['type']>(type: K): Promise<Extract<FromChild, { type: K }>[]> => {
    const ms = await Promise.all(children.map((_, r) => next(r)));
    for (const m of ms) if (m.type !== type) fail(1, `rank ${m.rank}: expected '${type}', got '${m.type}'`);
    return ms as Extract<FromChild, { type: K }>[];
  };
  const tell = (r: number, m: ToChild): void => {
    children[r].send(m);
  };
  const tellAll = (m: ToChild): void => children.forEach((_, r) => tell(r, m));

  const self = fileURLToPath(import.meta.url);
  const childArgs = [
    '--child', '--ranks', String(N), '--max-bytes', String(maxBytes), '--chunk', String(o.chunk),
    '--inflight', String(o.inflight), '--recv-buf', String(o.recvBuf), '--recv', o.recv, '--add', o.add,
    ...(o.verify ? [] : ['--no-verify']),
  ];
  for (let r = 0; r < N; r++) {
    inbox.push([]);
    waiters.push([]);
    // Children write nothing to stdout; their stderr (and stdout, just in case) goes to our stderr.
    const c = fork(self, [...childArgs, '--rank', String(r)], { stdio: ['ignore', 2, 2, 'ipc'] });
    children.push(c);
    c.on('message', (raw) => {
      const m = raw as FromChild;
      if (m.type === 'error') fail(1, `rank ${m.rank} failed: ${m.message}`);
      const w = waiters[r].shift();
      if (w) w(m);
      else inbox[r].push(m);
    });
    c.on('exit', (code, signal) => {
      if (!finished) fail(1, `rank ${r} exited unexpectedly (code ${code}, signal ${signal})`);
    });
    c.on('error', (err) => fail(1, `rank ${r}: ${err.message}`));
  }

  const listening = await all('listening');
  const ports = listening.map((m) => m.port);
  for (let r = 0; r < N; r++) tell(r, { cmd: 'peer', predPort: ports[mod(r - 1, N)] });
  await all('connected');

  const rows: Row[] = [];
  for (const bytes of o.sizes) {
    tellAll({ cmd: 'prepare', bytes });
    await all('ready');
    const times: number[] = [];
    let wrong = 0;
    for (let i = 0; i < o.warmup + o.iters; i++) {
      tellAll({ cmd: 'run', iter: i });
      const done = await all('done');
      wrong += done.reduce((s, m) => s + m.wrong, 0);
      if (i >= o.warmup) times.push(Math.max(...done.map((m) => m.us)));
      if (o.verbose) {
        const per = done.map((m) => m.us.toFixed(0)).join(' ');
        process.stderr.write(`  ${bytes} B ${i < o.warmup ? 'warmup' : 'iter'} ${i}: max ${Math.max(...done.map((m) => m.us)).toFixed(1)} us [${per}]\n`);
      }
    }
    const timeUs = median(times);
    const algbwGBps = timeUs > 0 ? bytes / timeUs / 1e3 : 0;
    const busbwGBps = N > 1 ? (algbwGBps * 2 * (N - 1)) / N : 0;
    rows.push({ bytes, timeUs, algbwGBps, busbwGBps, wrong });
  }

  finished = true;
  clearTimeout(timer);
  const exits = children.map((c) => new Promise<void>((resolve) => (c.exitCode !== null ? resolve() : c.once('exit', () => resolve()))));
  tellAll({ cmd: 'exit' });
  const grace = setTimeout(killAll, 5000);
  await Promise.all(exits);
  clearTimeout(grace);

  if (o.json) {
    process.stdout.write(
      JSON.stringify({
        impl: 'raw-tcp',
        ranks: N,
        chunkBytes: o.chunk,
        recv: o.recv,
        add: o.add,
        iters: o.iters,
        warmup: o.warmup,
        rows,
      }) + '\n',
    );
  } else {
    const pad = (s: string, n: number): string => s.padStart(n);
    let out = `raw TCP ring all-reduce, f32 sum, ${N} ranks, chunk ${o.chunk} B, recv ${o.recv}, add ${o.add}, median of ${o.iters}\n`;
    out += `${pad('bytes', 12)} ${pad('time us', 12)} ${pad('algbw GB/s', 11)} ${pad('busbw GB/s', 11)} ${pad('wrong', 7)}\n`;
    for (const r of rows) {
      out += `${pad(String(r.bytes), 12)} ${pad(r.timeUs.toFixed(1), 12)} ${pad(r.algbwGBps.toFixed(3), 11)} ${pad(r.busbwGBps.toFixed(3), 11)} ${pad(String(r.wrong), 7)}\n`;
    }
    process.stdout.write(out);
  }
}

// ---------------------------------------------------------------------------------------------

let opts: ReturnType<typeof parseArgs>;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) {
    process.stderr.write(`raw-tcp-ring: ${err.message}\n${USAGE}`);
    process.exit(2);
  }
  throw err;
}
if (opts.child) {
  if (!process.send) {
    process.stderr.write('raw-tcp-ring: --child needs an IPC channel\n');
    process.exit(2);
  }
  childMain(opts);
} else {
  parentMain(opts).catch((err: unknown) => {
    process.stderr.write(`raw-tcp-ring: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
