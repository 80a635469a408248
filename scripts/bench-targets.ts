// Issue 10's targets 3-5, for `npm run bench:peers --startup --checkpoint --floor`: each a ratio
// measured side by side in the same run, interleaved (the order rotated every repeat), repeated.
//
// (4) startup: `ringswarm run -w 256 -g 40 -s 64KiB` ready (the report's startupMs) against the
//     floor of any design with one process per worker: 256 bare Node processes, spawned as the
//     coordinator spawns its workers, that load `ws` and connect back over a WebSocket (time from
//     the first spawn to the last hello). Target <= 2x, and no false fault in those clean runs.
// (3) checkpoints: the demo shape (16 x 8 x 1 MiB) with --checkpoint-every 1 against
//     --checkpoint-every 0: step p50 <= 1.05x; worker RSS (the report's max) <= 80 MB + 2 x its
//     cards' buffers, checkpoints on.
// (5) floors: step p50 of the demo shape (checkpoints on) and of 10,240 cards (256 x 40 x 64 KiB)
//     against the bytes the step must touch at this machine's copy, add and loopback costs
//     (measured here by `c-ring --rates`, interleaved with the runs, best of them) spread over its
//     cores. Target <= 3x.
// The ringswarm runs are the typed API's `run`, each in a child process (scripts/api-child.ts, via
// run-report.ts), their typed reports read.
import { spawn, type ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { WebSocketServer, type WebSocket } from 'ws';
import type { RunOptions, RunReport } from '../src/api/index.js';
import { startJob } from './run-report.js';

export interface Target {
  name: string;
  result: 'PASS' | 'MISS' | 'N/A';
  detail: string;
}

export interface ExtraOptions {
  startup: boolean;
  checkpoint: boolean;
  floor: boolean;
  /** Repeats of the demo-shape runs (each on and off). */
  repeats: number;
  /** Repeats of the 256-worker runs (and of their bare-process floor). */
  scaleRepeats: number;
  /** Steps of each run. */
  demoSteps: number;
  scaleSteps: number;
  /** The demo shape (target 3, 5) and the scale shape (targets 4, 5); DEMO and SCALE unless testing. */
  demo: RunShape;
  scale: RunShape;
  /** The built C ring (for --rates), or why there is none. */
  cRing: { bin: string } | { reason: string };
  /** Milliseconds since the epoch by which everything must be over. */
  deadline: number;
  log: (line: string) => void;
  /** Register a way to stop a running child (on Ctrl-C); returns its unregistration. */
  track: (stop: (signal: NodeJS.Signals) => void) => () => void;
  interrupted: () => boolean;
}

export interface ExtraResult {
  text: string;
  targets: Target[];
  data: Record<string, unknown>;
  /** Runs that ended with wrong elements, or failed outright. */
  wrongRuns: number;
  failedRuns: number;
}

export interface RunShape {
  workers: number;
  cards: number;
  bytes: number;
}
export const DEMO: RunShape = { workers: 16, cards: 8, bytes: 1 << 20 };
export const SCALE: RunShape = { workers: 256, cards: 40, bytes: 64 << 10 };
const sz = (b: number): string => (b % (1 << 20) === 0 ? `${b >> 20} MiB` : b % 1024 === 0 ? `${b >> 10} KiB` : `${b} B`);
const shapeLabel = (s: RunShape): string => `${s.workers} x ${s.cards} x ${sz(s.bytes)}`;

const fmtMs = (ms: number): string => (ms < 10 ? ms.toFixed(2) : ms < 1000 ? ms.toFixed(1) : ms.toFixed(0));
const fmtX = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '-' : `${x.toFixed(2)}x`);
const min = (xs: number[]): number | undefined => (xs.length ? Math.min(...xs) : undefined);

function pad(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((s, i) => (i === 0 ? s.padEnd(w[i]) : s.padStart(w[i]))).join('  ').trimEnd()).join('\n');
}

// ---------------------------------------------------------------------------------------------
// ringswarm runs

interface RunResult {
  label: string;
  report: RunReport | null;
  error?: string;
  wallMs: number;
}

async function ringswarmRun(label: string, options: RunOptions, o: ExtraOptions): Promise<RunResult> {
  const t0 = Date.now();
  const timeoutMs = Math.max(5000, o.deadline - Date.now());
  const { pid, done } = startJob('run', options, { timeoutMs, killAfterMs: 20_000, stderrChars: 4000 });
  const untrack = o.track((sig) => {
    try {
      process.kill(pid, sig === 'SIGKILL' ? 'SIGKILL' : 'SIGINT'); // SIGINT: the run stops its workers and reports
    } catch {
      /* gone */
    }
  });
  const f = await done;
  untrack();
  const wallMs = Date.now() - t0;
  if (f.report === null) return { label, report: null, error: `no report (exit ${f.code}${f.timedOut ? ', timed out' : ''}): ${f.error ? f.error.message : f.stderrTail.trim().split('\n').slice(-3).join(' | ')}`, wallMs };
  const r = f.report;
  const error = f.timedOut ? 'timed out' : !r.ok ? (r.error ?? 'not ok') : r.wrong > 0 ? `${r.wrong} wrong elements` : undefined;
  return { label, report: r, error, wallMs };
}

const shapeOptions = (s: RunShape, steps: number): RunOptions => ({ workers: s.workers, cardsPerWorker: s.cards, size: s.bytes, steps });

/** Faults the run reported that nobody injected (a clean run has none), and restarts. */
function falseFaults(r: RunReport): string[] {
  const out = r.faults.filter((f) => !f.injected).map((f) => `${f.kind}${f.located ? ` at ${f.located}` : ''} (by ${f.detectedBy ?? '?'})`);
  if (r.restarts > 0) out.push(`${r.restarts} restarts`);
  if (r.epochs.length > 1) out.push(`${r.epochs.length} epochs`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The startup floor: N bare Node processes that load ws and connect back.

const BARE_CHILD = `const W = require(process.env.FLOOR_WS);
const s = new W(process.env.FLOOR_URL);
s.on('open', () => s.send(process.env.FLOOR_ID));
s.on('message', () => process.exit(0));
s.on('close', () => process.exit(0));
s.on('error', () => process.exit(1));`;

interface FloorResult {
  readyMs?: number;
  error?: string;
  wallMs: number;
}

async function bareProcesses(n: number, o: ExtraOptions): Promise<FloorResult> {
  const t00 = Date.now();
  const wsPath = createRequire(import.meta.url).resolve('ws');
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', () => resolve());
    wss.once('error', reject);
  });
  const port = (wss.address() as { port: number }).port;
  const children: ChildProcess[] = [];
  const socks: WebSocket[] = [];
  const stopAll = (sig: NodeJS.Signals): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(sig);
  };
  const untrack = o.track(stopAll);
  let hellos = 0;
  let failure: string | undefined;
  let settle!: () => void;
  const settled = new Promise<void>((r) => (settle = r));
  let readyMs: number | undefined;
  const t0 = performance.now();
  wss.on('connection', (sock) => {
    socks.push(sock);
    sock.on('error', () => {});
    sock.once('message', () => {
      if (++hellos === n) {
        readyMs = performance.now() - t0;
        settle();
      }
    });
  });
  const exits: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    // As the coordinator spawns a worker: own process group, output piped.
    const c = spawn(process.execPath, ['-e', BARE_CHILD], {
      env: { ...process.env, FLOOR_URL: `ws://127.0.0.1:${port}`, FLOOR_WS: wsPath, FLOOR_ID: String(i) },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(c);
    c.stdout!.resume();
    c.stderr!.resume();
    exits.push(
      new Promise<void>((resolve) =>
        c.on('close', (code, signal) => {
          if (readyMs === undefined && failure === undefined) {
            failure = `bare process ${i} exited before all were connected (code ${code}, signal ${signal})`;
            settle();
          }
          resolve();
        }),
      ),
    );
    c.on('error', (e) => {
      failure ??= `spawn: ${e.message}`;
      settle();
    });
  }
  const timer = setTimeout(() => {
    failure ??= `not all ${n} connected in time (${hellos})`;
    settle();
  }, Math.max(5000, o.deadline - Date.now()));
  await settled;
  clearTimeout(timer);
  for (const s of socks) s.send('bye');
  const grace = setTimeout(() => stopAll('SIGKILL'), 10_000);
  if (failure) stopAll('SIGKILL');
  await Promise.all(exits);
  clearTimeout(grace);
  untrack();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
  return { readyMs: failure ? undefined : readyMs, error: failure, wallMs: Date.now() - t00 };
}

// ---------------------------------------------------------------------------------------------
// The floor of a step, from this machine's unit costs.

export interface Rates {
  copyNsPerByte: number;
  addNsPerByte: number;
  loopbackNsPerByte: number;
  bufferBytes: number;
}

function measureRates(bin: string, o: ExtraOptions): Rates | string {
  const r = spawnSync(bin, ['--rates', '--timeout', '120'], { encoding: 'utf8', timeout: 150_000 });
  if (r.error || r.status !== 0) return `c-ring --rates failed: ${r.error?.message ?? `exit ${r.status}: ${(r.stderr ?? '').trim()}`}`;
  try {
    const d = JSON.parse(r.stdout) as Rates;
    o.log(`  rates: copy ${(1 / d.copyNsPerByte).toFixed(1)} GB/s, add ${(1 / d.addNsPerByte).toFixed(1)} GB/s, loopback ${d.loopbackNsPerByte.toFixed(3)} ns CPU a byte`);
    return d;
  } catch {
    return `c-ring --rates printed no JSON: ${r.stdout.slice(0, 200)}`;
  }
}

export interface Floor {
  /** CPU milliseconds per step, by part, over the whole machine. */
  parts: Record<string, number>;
  cpuMs: number;
  /** cpuMs spread over the cores. */
  wallMs: number;
}

/**
 * The bytes one step must touch, at the given unit costs, spread over `cores`: every card's
 * gradient filled (W.G.S copied), the cards of a worker reduced into one buffer (W.(G-1).S added),
 * the ring all-reduce between workers (2(W-1).S bytes over loopback, (W-1).S added), the result
 * copied back into the other cards (W.(G-1).S), checked (W.S, at the add rate), and with
 * checkpoints every card's state copied (W.G.S), and for copies sent as frames ('net') sent to the
 * next rank too (W.G.S over loopback); in shared memory ('shm') the one copy is all.
 * Latency (2(W-1) hops, scheduling) is left out: a floor of bytes only.
 */
export function stepFloor(s: RunShape, r: Rates, cores: number, checkpoint: 'net' | 'shm' | null): Floor {
  const { workers: W, cards: G, bytes: S } = s;
  const ns = (bytes: number, perByte: number): number => (bytes * perByte) / 1e6; // -> ms
  const parts: Record<string, number> = {
    fill: ns(W * G * S, r.copyNsPerByte),
    'local reduce': ns(W * (G - 1) * S, r.addNsPerByte),
    'all-reduce': W > 1 ? ns((W - 1) * S, r.addNsPerByte) + ns(2 * (W - 1) * S, r.loopbackNsPerByte) : 0,
    'copy back': ns(W * (G - 1) * S, r.copyNsPerByte),
    check: ns(W * S, r.addNsPerByte),
  };
  if (checkpoint) parts.checkpoint = ns(W * G * S, r.copyNsPerByte) + (checkpoint === 'net' ? ns(W * G * S, r.loopbackNsPerByte) : 0);
  const cpuMs = Object.values(parts).reduce((a, b) => a + b, 0);
  return { parts, cpuMs, wallMs: cpuMs / cores };
}

// ---------------------------------------------------------------------------------------------

export async function extraTargets(o: ExtraOptions): Promise<ExtraResult> {
  const targets: Target[] = [];
  const data: Record<string, unknown> = {};
  let text = '';
  let wrongRuns = 0;
  let failedRuns = 0;
  const cores = os.cpus().length;
  const DEMO = o.demo;
  const SCALE = o.scale;
  const count = (r: RunResult): void => {
    if (r.report && r.report.wrong > 0) wrongRuns++;
    else if (r.error) failedRuns++;
  };
  const late = (): boolean => o.interrupted() || Date.now() > o.deadline - 5000;

  const needScale = o.startup || o.floor;
  const needDemoOn = o.checkpoint || o.floor;
  const rates: Rates[] = [];
  const rateErrors: string[] = [];
  const takeRates = (): void => {
    if (!o.floor) return;
    if ('reason' in o.cRing) {
      if (rateErrors.length === 0) rateErrors.push(`no C ring to measure the rates: ${o.cRing.reason}`);
      return;
    }
    const r = measureRates(o.cRing.bin, o);
    if (typeof r === 'string') rateErrors.push(r);
    else rates.push(r);
  };

  // ---- demo shape: checkpoints on / off, interleaved
  const demoOn: RunResult[] = [];
  const demoOff: RunResult[] = [];
  if (needDemoOn) {
    const kinds: ('on' | 'off')[] = o.checkpoint ? ['on', 'off'] : ['on'];
    for (let rep = 0; rep < o.repeats && !late(); rep++) {
      takeRates();
      const order = kinds.map((_, i) => kinds[(i + rep) % kinds.length]);
      for (const k of order) {
        if (late()) break;
        const r = await ringswarmRun(`demo ${k}`, { ...shapeOptions(DEMO, o.demoSteps), checkpointEvery: k === 'on' ? 1 : 0 }, o);
        count(r);
        (k === 'on' ? demoOn : demoOff).push(r);
        const rep2 = r.report;
        o.log(
          `  [demo ${shapeLabel(DEMO)}, checkpoints ${k}, ${rep + 1}/${o.repeats}] ` +
            (rep2 ? `step p50 ${fmtMs(rep2.stepMs.p50)} ms, all-reduce p50 ${fmtMs(rep2.allreduceMs.p50)} ms, worker RSS max ${rep2.memory.workerRssMBMax} MB` : '') +
            (r.error ? ` ERROR ${r.error}` : '') + ` (${(r.wallMs / 1000).toFixed(1)} s)`,
        );
      }
    }
  }

  // ---- 256 workers: bare processes / ringswarm, interleaved
  const scale: RunResult[] = [];
  const bare: FloorResult[] = [];
  if (needScale) {
    const kinds: ('bare' | 'ringswarm')[] = o.startup ? ['bare', 'ringswarm'] : ['ringswarm'];
    for (let rep = 0; rep < o.scaleRepeats && !late(); rep++) {
      takeRates();
      const order = kinds.map((_, i) => kinds[(i + rep) % kinds.length]);
      for (const k of order) {
        if (late()) break;
        if (k === 'bare') {
          const f = await bareProcesses(SCALE.workers, o);
          bare.push(f);
          if (f.error) failedRuns++;
          o.log(`  [${SCALE.workers} bare Node processes + ws, ${rep + 1}/${o.scaleRepeats}] ${f.readyMs !== undefined ? `all connected in ${fmtMs(f.readyMs)} ms` : `ERROR ${f.error}`} (${(f.wallMs / 1000).toFixed(1)} s)`);
        } else {
          // The default ready timeout (60 s) is about what 256 workers take on a busy 2-core machine.
          const readyMs = Math.max(60_000, Math.min(600_000, o.deadline - Date.now() - 10_000));
          const r = await ringswarmRun('scale', { ...shapeOptions(SCALE, o.scaleSteps), readyTimeoutMs: readyMs }, o);
          count(r);
          scale.push(r);
          const x = r.report;
          o.log(
            `  [ringswarm run ${shapeLabel(SCALE)}, ${rep + 1}/${o.scaleRepeats}] ` +
              (x ? `ready in ${x.startupMs} ms, step p50 ${fmtMs(x.stepMs.p50)} ms (${x.algo.join(',')}), false faults: ${falseFaults(x).join(', ') || 'none'}` : '') +
              (r.error ? ` ERROR ${r.error}` : '') + ` (${(r.wallMs / 1000).toFixed(1)} s)`,
          );
        }
      }
    }
  }
  takeRates();

  const okReports = (rs: RunResult[]): RunReport[] => rs.filter((r) => r.report && !r.error).map((r) => r.report!);
  const errorsOf = (rs: RunResult[]): string => rs.filter((r) => r.error).map((r) => `${r.label}: ${r.error}`).join('; ');

  // ---- (4) startup
  if (o.startup) {
    const rs = okReports(scale);
    const rsReady = min(rs.map((r) => r.startupMs));
    const floorReady = min(bare.filter((b) => b.readyMs !== undefined).map((b) => b.readyMs!));
    const ff = scale.flatMap((r) => (r.report ? falseFaults(r.report) : []));
    text += `\n(4) startup, ${SCALE.workers} workers (best of ${o.scaleRepeats}, interleaved)\n`;
    text += pad([
      ['', 'ready ms', 'runs'],
      [`ringswarm run ${shapeLabel(SCALE)}`, rsReady !== undefined ? fmtMs(rsReady) : '-', scale.map((r) => (r.report ? String(r.report.startupMs) : 'err')).join(' ')],
      [`${SCALE.workers} bare Node processes, ws, connect`, floorReady !== undefined ? fmtMs(floorReady) : '-', bare.map((b) => (b.readyMs !== undefined ? fmtMs(b.readyMs) : 'err')).join(' ')],
    ]) + '\n';
    const name = `(4) ${SCALE.workers} workers ready <= 2 x ${SCALE.workers} bare Node processes (ws, connect back); no false fault`;
    if (rsReady === undefined || floorReady === undefined) {
      targets.push({ name, result: 'N/A', detail: [errorsOf(scale), bare.filter((b) => b.error).map((b) => b.error).join('; ')].filter(Boolean).join('; ') || 'not measured' });
    } else {
      const x = rsReady / floorReady;
      targets.push({
        name,
        result: x <= 2 && ff.length === 0 ? 'PASS' : 'MISS',
        detail: `${fmtMs(rsReady)} vs ${fmtMs(floorReady)} ms: ${fmtX(x)} the floor (target 2.00x); false faults: ${ff.join(', ') || 'none'}`,
      });
    }
    data.startup = { ringswarm: scale, bare };
  }

  // ---- (3) checkpoints
  if (o.checkpoint) {
    const on = okReports(demoOn);
    const off = okReports(demoOff);
    const onStep = min(on.map((r) => r.stepMs.p50));
    const offStep = min(off.map((r) => r.stepMs.p50));
    const rssMax = on.length ? Math.max(...on.map((r) => r.memory.workerRssMBMax)) : undefined;
    const rssLimit = 80 + (2 * DEMO.cards * DEMO.bytes) / 2 ** 20;
    text += `\n(3) checkpoints, demo shape ${shapeLabel(DEMO)} (best step p50 of ${o.repeats}, interleaved)\n`;
    const row = (label: string, rs: RunReport[], all: RunResult[]): string[] => [
      label,
      min(rs.map((r) => r.stepMs.p50)) !== undefined ? fmtMs(min(rs.map((r) => r.stepMs.p50))!) : '-',
      min(rs.map((r) => r.allreduceMs.p50)) !== undefined ? fmtMs(min(rs.map((r) => r.allreduceMs.p50))!) : '-',
      rs.length ? String(Math.max(...rs.map((r) => r.memory.workerRssMBMax))) : '-',
      all.map((r) => (r.report && !r.error ? fmtMs(r.report.stepMs.p50) : 'err')).join(' '),
    ];
    text += pad([
      ['', 'step p50 ms', 'all-reduce p50 ms', 'worker RSS max MB', 'step p50 of each run'],
      row('--checkpoint-every 1', on, demoOn),
      row('--checkpoint-every 0', off, demoOff),
    ]) + '\n';
    const name = '(3a) demo shape, checkpoint every step: step time <= 1.05 x --checkpoint-every 0';
    if (onStep === undefined || offStep === undefined) targets.push({ name, result: 'N/A', detail: errorsOf([...demoOn, ...demoOff]) || 'not measured' });
    else targets.push({ name, result: onStep <= 1.05 * offStep ? 'PASS' : 'MISS', detail: `${fmtMs(onStep)} vs ${fmtMs(offStep)} ms: ${fmtX(onStep / offStep)} (target 1.05x)` });
    const name2 = `(3b) demo shape, checkpoints on: worker RSS <= 80 MB + 2 x its cards' buffers = ${rssLimit} MB`;
    if (rssMax === undefined) targets.push({ name: name2, result: 'N/A', detail: errorsOf(demoOn) || 'not measured' });
    else {
      // With --checkpoint-copy shm (auto here) the checkpoints are in /dev/shm, in no worker's RSS: said beside it.
      const slots = Math.max(...on.map((r) => r.memory.checkpointSlotsMB ?? 0));
      const beside = slots > 0 ? `; beside that, the checkpoints' shared-memory slots: ${slots} MB, ${(slots / DEMO.workers).toFixed(0)} MB a worker` : '';
      targets.push({ name: name2, result: rssMax <= rssLimit ? 'PASS' : 'MISS', detail: `${rssMax} MB (max over ${on.length} runs' workers)${beside}` });
    }
    data.checkpoint = { on: demoOn, off: demoOff };
  }

  // ---- (5) floors
  if (o.floor) {
    const best: Rates | undefined = rates.length
      ? {
          copyNsPerByte: Math.min(...rates.map((r) => r.copyNsPerByte)),
          addNsPerByte: Math.min(...rates.map((r) => r.addNsPerByte)),
          loopbackNsPerByte: Math.min(...rates.map((r) => r.loopbackNsPerByte)),
          bufferBytes: rates[0].bufferBytes,
        }
      : undefined;
    text += `\n(5) step time against its floor (bytes a step must touch at this machine's unit costs, over ${cores} cores)\n`;
    if (!best) {
      text += `  no rates: ${rateErrors.join('; ')}\n`;
      targets.push({ name: '(5) step time <= 3 x its floor', result: 'N/A', detail: rateErrors.join('; ') });
    } else {
      text += `rates (c-ring --rates, best of ${rates.length}, CPU time, ${best.bufferBytes >> 20} MiB buffers): copy ${(1 / best.copyNsPerByte).toFixed(1)} GB/s, add ${(1 / best.addNsPerByte).toFixed(1)} GB/s, loopback TCP ${best.loopbackNsPerByte.toFixed(3)} ns of CPU a byte (both ends)\n`;
      const shapes: { label: string; shape: typeof DEMO; runs: RunResult[] }[] = [
        { label: `demo ${shapeLabel(DEMO)}, checkpoints on`, shape: DEMO, runs: demoOn },
        { label: `${(SCALE.workers * SCALE.cards).toLocaleString('en-US')} cards ${shapeLabel(SCALE)}, checkpoints on`, shape: SCALE, runs: scale },
      ];
      const partNames = Object.keys(stepFloor(DEMO, best, cores, 'shm').parts);
      const rows: string[][] = [['', 'step p50 ms', 'floor ms', 'step/floor', ...partNames.map((p) => `${p} ms`)]];
      const fl: Record<string, unknown> = {};
      for (const s of shapes) {
        // The floor of the way the runs sent their copies (the report has slots for 'shm').
        const ok = okReports(s.runs);
        const f = stepFloor(s.shape, best, cores, ok.length && ok.every((r) => r.memory.checkpointSlotsMB === null) ? 'net' : 'shm');
        const step = min(ok.map((r) => r.stepMs.p50));
        rows.push([s.label, step !== undefined ? fmtMs(step) : '-', fmtMs(f.wallMs), fmtX(step !== undefined ? step / f.wallMs : undefined), ...partNames.map((p) => fmtMs(f.parts[p] / cores))]);
        const name = `(5) ${s.label}: step time <= 3 x its floor`;
        if (step === undefined) targets.push({ name, result: 'N/A', detail: errorsOf(s.runs) || 'not measured' });
        else targets.push({ name, result: step <= 3 * f.wallMs ? 'PASS' : 'MISS', detail: `${fmtMs(step)} vs ${fmtMs(f.wallMs)} ms: ${fmtX(step / f.wallMs)} the floor (target 3.00x)` });
        fl[s.label] = { floor: f, stepP50Ms: step };
      }
      const off = stepFloor(DEMO, best, cores, null);
      text += pad(rows) + '\n';
      text += `(parts in wall ms, CPU ms / ${cores}; the demo shape's floor without checkpoints: ${fmtMs(off.wallMs)} ms)\n`;
      data.floor = { rates, best, cores, shapes: fl, rateErrors };
    }
  }
  return { text, targets, data, wrongRuns, failedRuns };
}
