// `npm run bench:peers`: ringswarm's all-reduce against three peers on the same machine, in one run
// (issue 10's targets 1, 2 and 6).
//
//   ringswarm  node dist/scripts/api-child.js bench '{"workers":N,"cardsPerWorker":1,"minBytes":S,
//                   "maxBytes":S,"iters":K,"warmup":W,"collective":"allreduce","dtype":"f32","op":"sum","algos":[A]}'
//              (the typed API's `bench` in its own process, its BenchReport as JSON on stdout; A: --rs-algo; by default the algorithm `ringswarm run --algo auto` picks for the
//              shape, so rd for small messages on many workers; the table's "rs algo" column)
//   c-ring     dist/c-ring --ranks N --sizes S --iters K --warmup W --json
//              (scripts/c-ring.c, built here with `cc -O2` first; skipped, with the reason, without cc)
//   raw-tcp    node dist/scripts/raw-tcp-ring.js --ranks N --sizes S --iters K --warmup W --json
//              (the plain-Node TCP ring)
//   gloo       /usr/bin/python3 scripts/gloo_allreduce.py --ranks N --sizes S --iters K --warmup W
//              (only when `/usr/bin/python3 -c 'import torch'` works; else skipped, with the reason)
//
// Shapes (--shapes 4x64MiB,8x8: ranks x bytes; or the cross product of --ranks and --sizes). For
// every shape the tools are interleaved, R times (--repeats, default 3) with the order rotated
// each time, so that this machine's drift (and whatever else runs on it) hits them alike; a cell
// reports the best (or, with --stat median, the median) of the R measurements, each of which is
// itself the median over K timed iterations after W untimed ones (sizes under 1 MiB use
// --iters-small / --warmup-small: their ops are short and noisy). busbw follows nccl-tests:
// algbw = bytes / time, busbw = algbw * 2(n-1)/n, GB = 1e9 bytes; it is recomputed here from each
// tool's time so all use one definition. Ratios are ringswarm's time over the peer's (2.00x:
// ringswarm takes twice as long; its busbw is then half).
//
// Then issue 10's targets, PASS or MISS with the figure: (1) 64 MiB on 4 workers x 1 card: busbw
// >= 0.9 x the C ring's; (2) 8 B on 8 workers: time <= 1.5 x the plain-Node ring's. With
// --startup, --checkpoint, --floor also targets 4, 3 and 5 (see scripts/bench-startup.ts,
// scripts/bench-checkpoint.ts, scripts/bench-floor.ts). A missed target is printed, not an error.
//
// Exit code: 0; 1 if any run reported wrong elements; 2 if a run failed (crashed, timed out, bad
// output; a ringswarm that is not built yet is "missing", not a failure) or for a usage error;
// 124 when the global timeout cut the run short; 130/143 when interrupted. Every spawned process is reaped.
// On a terminal, a progress line on stderr (measurements done, time elapsed, time left).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { buildCRing } from './c-ring-build.js';
import { DEMO, extraTargets, SCALE, type RunShape, type Target } from './bench-targets.js';
import { pickAlgo } from '../src/collective/model.js';
import { ALLREDUCE_ALGOS, type AllreduceAlgo } from '../src/collective/types.js';
import { RUN_DEFAULTS } from '../src/coordinator/config.js';
import { fabricModel } from '../src/coordinator/run.js';
import type { BenchOptions } from '../src/api/index.js';
import { ScriptProgress } from './script-progress.js';

type Impl = 'ringswarm' | 'c-ring' | 'raw-tcp' | 'gloo';
const IMPLS: Impl[] = ['ringswarm', 'c-ring', 'raw-tcp', 'gloo'];
const LABEL: Record<Impl, string> = { ringswarm: 'ringswarm', 'c-ring': 'C ring', 'raw-tcp': 'Node ring', gloo: 'gloo' };
const PYTHON = '/usr/bin/python3';

// dist/scripts/bench-peers.js -> project root
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The typed API's runner (scripts/api-child.ts): `bench` in its own process, the report on stdout. */
const RINGSWARM_CHILD = path.join(ROOT, 'dist', 'scripts', 'api-child.js');
const RAW_TCP = path.join(ROOT, 'dist', 'scripts', 'raw-tcp-ring.js');
const GLOO = path.join(ROOT, 'scripts', 'gloo_allreduce.py');

// ---------------------------------------------------------------------------------------------
// Flags

function parseSize(text: string): number {
  const m = /^(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`bad size '${text}' (e.g. 8, 1MiB, 64MiB)`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const mult = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 ** 2 : unit.startsWith('g') ? 1024 ** 3 : 1;
  const n = Number(m[1]) * mult;
  if (n % 4 !== 0) throw new InvalidArgumentError(`size ${n} is not a multiple of 4 (f32)`);
  return n;
}
const list =
  <T>(item: (s: string) => T) =>
  (text: string): T[] => {
    const out = text.split(',').filter((s) => s.trim() !== '').map(item);
    if (out.length === 0) throw new InvalidArgumentError('empty list');
    return out;
  };
const posInt =
  (min: number) =>
  (text: string): number => {
    if (!/^\d+$/.test(text.trim()) || Number(text) < min) throw new InvalidArgumentError(`expected an integer >= ${min}`);
    return Number(text);
  };
const implName = (s: string): Impl => {
  const v = s.trim() as Impl;
  if (!IMPLS.includes(v)) throw new InvalidArgumentError(`unknown implementation '${s}' (${IMPLS.join(', ')})`);
  return v;
};

interface Shape {
  ranks: number;
  bytes: number;
}
const shapeItem = (text: string): Shape => {
  const m = /^\s*(\d+)\s*x\s*(\S+)\s*$/i.exec(text);
  if (!m || Number(m[1]) < 1) throw new InvalidArgumentError(`bad shape '${text}' (ranks x bytes, e.g. 4x64MiB)`);
  return { ranks: Number(m[1]), bytes: parseSize(m[2]) };
};
const DEFAULT_SHAPES = '4x64MiB,8x8,4x1MiB,4x8';

interface Opts {
  shapes: Shape[];
  ranks?: number[];
  sizes?: number[];
  iters: number;
  warmup: number;
  itersSmall: number;
  warmupSmall: number;
  repeats: number;
  stat: 'best' | 'median';
  impls: Impl[];
  json?: string;
  timeout: number;
  runTimeout: number;
  verbose: boolean;
  startup: boolean;
  checkpoint: boolean;
  floor: boolean;
  scaleRepeats: number;
  demoSteps: number;
  scaleSteps: number;
  demoShape: RunShape;
  scaleShape: RunShape;
  quiet?: number;
  quietWait: number;
  rsAlgo: AllreduceAlgo | 'auto';
}
const runShape = (text: string): RunShape => {
  const m = /^\s*(\d+)\s*x\s*(\d+)\s*x\s*(\S+)\s*$/i.exec(text);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new InvalidArgumentError(`bad run shape '${text}' (workers x cards x bytes, e.g. 16x8x1MiB)`);
  return { workers: Number(m[1]), cards: Number(m[2]), bytes: parseSize(m[3]) };
};

const program = new Command()
  .name('bench-peers')
  .description('ringswarm all-reduce vs a C TCP ring, a plain-Node TCP ring and gloo, interleaved, on this machine')
  .option('--shapes <list>', `ranks x bytes, comma-separated (default ${DEFAULT_SHAPES})`, list(shapeItem))
  .option('--ranks <list>', 'ranks counts (with --sizes: their cross product instead of --shapes)', list(posInt(1)))
  .option('--sizes <list>', 'message sizes in bytes (K/KiB, M/MiB, G/GiB = powers of 1024)', list(parseSize))
  .option('--iters <n>', 'timed iterations per measurement, sizes >= 1 MiB', posInt(1), 10)
  .option('--warmup <n>', 'untimed iterations per measurement, sizes >= 1 MiB', posInt(0), 5)
  .option('--iters-small <n>', 'timed iterations per measurement, sizes < 1 MiB', posInt(1), 100)
  .option('--warmup-small <n>', 'untimed iterations per measurement, sizes < 1 MiB', posInt(0), 20)
  .option('--repeats <n>', 'measurements per (implementation, shape)', posInt(1), 3)
  .option('--stat <stat>', 'how repeats combine: best | median', (s: string) => {
    if (s !== 'best' && s !== 'median') throw new InvalidArgumentError('best or median');
    return s;
  }, 'best')
  .option('--impls <list>', 'implementations to run', list(implName), [...IMPLS])
  .option('--json <path>', 'write all figures to this file')
  .option('--startup', 'also target 4: 256 workers ready vs 256 bare Node processes that load ws and connect back', false)
  .option('--checkpoint', 'also target 3: the demo shape with and without checkpoints, and worker memory', false)
  .option('--floor', "also target 5: step time vs a floor from this machine's copy, reduce and loopback rates", false)
  .option('--scale-repeats <n>', 'runs of each side of the 256-worker comparisons (--startup, --floor)', posInt(1), 2)
  .option('--demo-steps <n>', 'steps of each demo-shape run (--checkpoint, --floor)', posInt(1), 20)
  .option('--scale-steps <n>', 'steps of each 256-worker run (--startup, --floor)', posInt(1), 3)
  .addOption(new Option('--demo-shape <w x g x bytes>', 'the demo shape of targets 3 and 5').argParser(runShape).default(DEMO, '16x8x1MiB'))
  .addOption(new Option('--scale-shape <w x g x bytes>', 'the scale shape of targets 4 and 5').argParser(runShape).default(SCALE, '256x40x64KiB'))
  .option('--quiet <n>', 'before each measurement wait (up to --quiet-wait) until at most n tasks are runnable on the machine (/proc/loadavg), for a shared machine')
  .option('--quiet-wait <s>', 'longest wait for --quiet, seconds', posInt(0), 120)
  .option('--timeout <s>', 'global time limit, seconds', posInt(1), 3600)
  .option('--run-timeout <s>', 'time limit of one measurement, seconds', posInt(1), 300)
  .option('--verbose', "pass the tools' stderr through", false)
  .addOption(
    new Option('--rs-algo <algo>', "ringswarm's all-reduce algorithm: auto (the one `ringswarm run --algo auto` picks for the shape, as the alpha-beta model predicts), ring or rd")
      .choices(['auto', ...ALLREDUCE_ALGOS])
      .default('auto'),
  )
  .exitOverride();
try {
  program.parse();
} catch (err) {
  // Usage errors exit 2, keeping 1 for wrong results; --help exits 0.
  process.exit(err instanceof CommanderError && err.exitCode === 0 ? 0 : 2);
}
const opts = program.opts<Opts>();
if (opts.ranks || opts.sizes) {
  if (opts.shapes) {
    process.stderr.write('bench-peers: --shapes, or --ranks with --sizes, not both\n');
    process.exit(2);
  }
  const rs = opts.ranks ?? [...new Set(shapeList(DEFAULT_SHAPES).map((x) => x.ranks))];
  const bs = opts.sizes ?? [...new Set(shapeList(DEFAULT_SHAPES).map((x) => x.bytes))];
  opts.shapes = rs.flatMap((ranks) => bs.map((bytes) => ({ ranks, bytes })));
} else if (!opts.shapes) {
  opts.shapes = shapeList(DEFAULT_SHAPES);
}
function shapeList(text: string): Shape[] {
  return list(shapeItem)(text);
}
const itersOf = (bytes: number): { iters: number; warmup: number } =>
  bytes < 1 << 20 ? { iters: opts.itersSmall, warmup: opts.warmupSmall } : { iters: opts.iters, warmup: opts.warmup };

// ---------------------------------------------------------------------------------------------
// Processes: every child is tracked and killed on exit, error, signal and timeout.

const live = new Set<ChildProcess>();
/** Other running things (the runs of --startup, --checkpoint, --floor), by how to stop them. */
const liveOther = new Set<(signal: NodeJS.Signals) => void>();

function killTree(c: ChildProcess, signal: NodeJS.Signals): void {
  if (c.exitCode === null && c.signalCode === null) {
    try {
      c.kill(signal);
    } catch {
      /* gone */
    }
  }
}
function killAll(signal: NodeJS.Signals): void {
  for (const c of live) killTree(c, signal);
  for (const stop of liveOther) stop(signal);
}

let interrupted = false;
process.on('exit', () => killAll('SIGKILL'));
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\nbench-peers: ${sig}, stopping the running measurement\n`);
    killAll('SIGTERM');
    setTimeout(() => {
      killAll('SIGKILL');
      process.exit(code);
    }, 2000).unref();
    const check = setInterval(() => {
      if (live.size === 0 && liveOther.size === 0) process.exit(code);
    }, 50);
    check.unref();
  });
}

interface Spawned {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  wallMs: number;
  /** CPU seconds (user + system) of the whole process tree, from our reaped-children counters. */
  cpuS: number | null;
  spawnError?: string;
}

/** CPU seconds of every reaped descendant so far (Linux: cutime + cstime of /proc/self/stat). */
function childrenCpuS(): number | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields 16 and 17 (1-based) of stat; f[0] is field 3
    return (Number(f[13]) + Number(f[14])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

function run(cmd: string, args: string[], timeoutS: number): Promise<Spawned> {
  return new Promise((resolve) => {
    const start = Date.now();
    const cpu0 = childrenCpuS();
    const c = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(c);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let spawnError: string | undefined;
    c.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    c.stderr!.setEncoding('utf8').on('data', (s: string) => {
      if (opts.verbose) process.stderr.write(s);
      stderr = (stderr + s).slice(-20000);
    });
    let hard: NodeJS.Timeout | undefined;
    const soft = setTimeout(() => {
      timedOut = true;
      killTree(c, 'SIGTERM');
      hard = setTimeout(() => killTree(c, 'SIGKILL'), 5000);
    }, timeoutS * 1000);
    c.on('error', (err) => (spawnError = err.message));
    c.on('close', (code, signal) => {
      clearTimeout(soft);
      if (hard) clearTimeout(hard);
      live.delete(c);
      const cpu1 = childrenCpuS();
      resolve({ code, signal, stdout, stderr, timedOut, wallMs: Date.now() - start, cpuS: cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null, spawnError });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Measurements

type Status = 'ok' | 'missing' | 'skipped' | 'error';
interface Measurement {
  impl: Impl;
  ranks: number;
  bytes: number;
  repeat: number;
  status: Status;
  /** ringswarm's all-reduce algorithm. */
  algo?: AllreduceAlgo;
  timeUs?: number;
  algbwGBps?: number;
  busbwGBps?: number;
  /** As reported by the tool itself (its own busbw), for reference. */
  reportedBusbwGBps?: number;
  wrong?: number;
  reason?: string;
  wallMs?: number;
  /** CPU seconds of the tool's whole run (start-up, warm-up and checks included), all its processes. */
  cpuS?: number | null;
  /** Tasks runnable on the machine just before it started (/proc/loadavg), and with --quiet how long we waited for that. */
  runnableBefore?: number | null;
  quietWaitS?: number;
  /** The load average (1 min) when it ended. */
  load1?: number;
}

interface ToolRow {
  bytes: number;
  timeUs: number;
  /** ringswarm bench: the median over iterations of the slowest rank's time (its timeUs is the mean, as nccl-tests). */
  medianUs?: number;
  busbwGBps?: number;
  wrong: number;
}

/** The last JSON document with a `rows` array in the output: the whole text, or one line of it. */
function parseDoc(stdout: string): { rows?: ToolRow[]; error?: string } | null {
  const tryParse = (s: string): { rows?: ToolRow[]; error?: string } | null => {
    try {
      const v: unknown = JSON.parse(s);
      return v !== null && typeof v === 'object' ? (v as { rows?: ToolRow[]; error?: string }) : null;
    } catch {
      return null;
    }
  };
  const whole = tryParse(stdout.trim());
  if (whole) return whole;
  const lines = stdout.trim().split('\n').reverse();
  for (const l of lines) {
    const d = tryParse(l.trim());
    if (d && (Array.isArray(d.rows) || d.error)) return d;
  }
  return null;
}

/** ringswarm's algorithm for a shape: --rs-algo, or for auto the one `run --algo auto` picks (1 card a worker, no emulated link). */
function rsAlgo(ranks: number, bytes: number): AllreduceAlgo {
  return opts.rsAlgo === 'auto' ? pickAlgo(ranks, 1, bytes, fabricModel(RUN_DEFAULTS.link)) : opts.rsAlgo;
}

const busbw = (bytes: number, us: number, n: number): number => (n > 1 && us > 0 ? ((bytes / us / 1e3) * 2 * (n - 1)) / n : 0);

/** The last few meaningful lines of a tool's output (stack frames left out). */
function lastLines(s: string, n = 3): string {
  const lines = s.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== '' && !/^\s+at /.test(l));
  return lines.slice(-n).join(' | ').slice(0, 600);
}

let glooSkip: string | null = null;
let cRing: ReturnType<typeof buildCRing> | null = null;

async function measure(impl: Impl, ranks: number, bytes: number, repeat: number, timeoutS: number): Promise<Measurement> {
  const base: Measurement = { impl, ranks, bytes, repeat, status: 'ok', ...(impl === 'ringswarm' ? { algo: rsAlgo(ranks, bytes) } : {}) };
  const { iters, warmup } = itersOf(bytes);
  const it = [String(iters)];
  const wu = [String(warmup)];
  let cmd: string;
  let args: string[];
  switch (impl) {
    case 'ringswarm':
    {
      if (!existsSync(RINGSWARM_CHILD)) return { ...base, status: 'missing', reason: `${path.relative(ROOT, RINGSWARM_CHILD)} does not exist (not built yet?)` };
      const job: BenchOptions = { workers: ranks, cardsPerWorker: 1, minBytes: bytes, maxBytes: bytes, iters, warmup, collective: 'allreduce', dtype: 'f32', op: 'sum', algos: [rsAlgo(ranks, bytes)] };
      cmd = process.execPath;
      args = [RINGSWARM_CHILD, 'bench', JSON.stringify(job)];
      break;
    }
    case 'c-ring':
      if (cRing === null) return { ...base, status: 'missing', reason: 'not built' };
      if (!cRing.ok) return { ...base, status: 'skipped', reason: cRing.reason };
      cmd = cRing.bin;
      args = ['--ranks', String(ranks), '--sizes', String(bytes), '--iters', ...it, '--warmup', ...wu, '--json', '--timeout', String(timeoutS)];
      break;
    case 'raw-tcp':
      if (!existsSync(RAW_TCP)) return { ...base, status: 'missing', reason: `${path.relative(ROOT, RAW_TCP)} does not exist (build first)` };
      cmd = process.execPath;
      args = [RAW_TCP, '--ranks', String(ranks), '--sizes', String(bytes), '--iters', ...it, '--warmup', ...wu, '--json',
        '--timeout', String(timeoutS)];
      break;
    case 'gloo':
      if (glooSkip !== null) return { ...base, status: 'skipped', reason: glooSkip };
      cmd = PYTHON;
      args = [GLOO, '--ranks', String(ranks), '--sizes', String(bytes), '--iters', ...it, '--warmup', ...wu,
        '--timeout', String(timeoutS)];
      break;
  }
  // The tools have their own time limits; ours is a backstop a little later.
  const r = await run(cmd, args, timeoutS + 15);
  const m: Measurement = { ...base, wallMs: r.wallMs, cpuS: r.cpuS, load1: os.loadavg()[0] };
  const fail = (reason: string): Measurement => ({ ...m, status: 'error', reason });
  if (r.spawnError) return fail(`could not start ${cmd}: ${r.spawnError}`);
  if (r.timedOut) return fail(`timed out after ${timeoutS} s`);
  const doc = parseDoc(r.stdout);
  if (impl === 'gloo' && r.code === 3 && doc?.error) return { ...m, status: 'skipped', reason: doc.error };
  if (r.code !== 0) return fail(`exit ${r.code ?? r.signal}: ${lastLines(r.stderr) || lastLines(r.stdout)}`);
  if (!doc || !Array.isArray(doc.rows)) return fail(`no JSON result on stdout: ${lastLines(r.stdout) || lastLines(r.stderr)}`);
  const row = doc.rows.find((x) => x.bytes === bytes) ?? (doc.rows.length === 1 ? doc.rows[0] : undefined);
  if (!row || typeof row.timeUs !== 'number') return fail(`no row for ${bytes} bytes in the result`);
  // Every tool's figure is the median over its timed iterations (ringswarm's mean would count a
  // descheduled iteration that the others' medians leave out).
  const timeUs = typeof row.medianUs === 'number' ? row.medianUs : row.timeUs;
  return {
    ...m,
    timeUs,
    algbwGBps: timeUs > 0 ? bytes / timeUs / 1e3 : 0,
    busbwGBps: busbw(bytes, timeUs, ranks),
    reportedBusbwGBps: row.busbwGBps,
    wrong: typeof row.wrong === 'number' ? row.wrong : 0,
  };
}

function checkGloo(): string | null {
  if (!existsSync(GLOO)) return `${path.relative(ROOT, GLOO)} not found`;
  const r = spawnSync(PYTHON, ['-c', 'import torch, torch.distributed as d; assert d.is_gloo_available(), "no gloo"'], {
    timeout: 120_000,
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (r.error) return `${PYTHON} could not run: ${r.error.message}`;
  if (r.status !== 0) return `${PYTHON} -c 'import torch' failed: ${lastLines(r.stderr ?? '', 1) || `exit ${r.status ?? r.signal}`}`;
  return null;
}

/** Tasks runnable right now, the median of 5 samples over half a second (this process's own read left out). */
async function runnable(): Promise<number | null> {
  const xs: number[] = [];
  for (let i = 0; i < 5; i++) {
    try {
      const f = readFileSync('/proc/loadavg', 'utf8').split(' ')[3];
      xs.push(Number(f.split('/')[0]) - 1);
    } catch {
      return null;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return median(xs);
}

/** With --quiet: wait until the machine is that quiet, or --quiet-wait has passed. Returns the wait, in s. */
async function waitQuiet(deadline: number): Promise<{ waitedS: number; runnable: number | null }> {
  let r = await runnable();
  const t0 = Date.now();
  if (opts.quiet === undefined) return { waitedS: 0, runnable: r };
  const until = Math.min(deadline - 60_000, t0 + opts.quietWait * 1000);
  while (r !== null && r > opts.quiet && Date.now() < until && !interrupted) {
    await new Promise((res) => setTimeout(res, 1000));
    r = await runnable();
  }
  return { waitedS: (Date.now() - t0) / 1000, runnable: r };
}

// ---------------------------------------------------------------------------------------------
// Summary

interface Cell {
  impl: Impl;
  ranks: number;
  bytes: number;
  status: Status;
  reason?: string;
  n: number;
  timeUs?: number;
  busbwGBps?: number;
  bestTimeUs?: number;
  medianTimeUs?: number;
  timesUs: number[];
  wrong: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function summarize(ms: Measurement[], impl: Impl, ranks: number, bytes: number): Cell {
  const mine = ms.filter((m) => m.impl === impl && m.ranks === ranks && m.bytes === bytes);
  const ok = mine.filter((m) => m.status === 'ok' && m.timeUs !== undefined);
  const wrong = mine.reduce((s, m) => s + (m.wrong ?? 0), 0);
  const timesUs = ok.map((m) => m.timeUs!);
  if (ok.length === 0) {
    const first = mine.find((m) => m.status !== 'ok');
    return { impl, ranks, bytes, status: first?.status ?? 'missing', reason: first?.reason ?? 'not measured', n: 0, timesUs, wrong };
  }
  const best = Math.min(...timesUs);
  const med = median(timesUs);
  const t = opts.stat === 'best' ? best : med;
  const failed = mine.find((m) => m.status === 'error');
  return {
    impl, ranks, bytes, status: 'ok', n: ok.length, timeUs: t, busbwGBps: busbw(bytes, t, ranks),
    bestTimeUs: best, medianTimeUs: med, timesUs, wrong,
    reason: failed ? `${mine.length - ok.length} of ${mine.length} runs failed: ${failed.reason}` : undefined,
  };
}

const fmtSize = (b: number): string =>
  b >= 1 << 30 && b % (1 << 30) === 0 ? `${b / (1 << 30)} GiB` : b >= 1 << 20 && b % (1 << 20) === 0 ? `${b / (1 << 20)} MiB` : b >= 1024 && b % 1024 === 0 ? `${b / 1024} KiB` : `${b} B`;
const fmtBw = (c: Cell): string => (c.status === 'ok' ? (c.busbwGBps! >= 0.01 ? c.busbwGBps!.toFixed(3) : c.busbwGBps!.toExponential(2)) : c.status);
const fmtTime = (us: number): string => (us < 1000 ? `${us.toFixed(1)} us` : us < 1e6 ? `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms` : `${(us / 1e6).toFixed(2)} s`);
const fmtUs = (c: Cell): string => (c.status === 'ok' ? fmtTime(c.timeUs!) : c.status);
const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
const fmtRatio = (x: number | undefined): string => (x === undefined ? '-' : `${x.toFixed(2)}x`);

/** One table: per shape each tool's time and busbw, then ringswarm's time over each peer's. */
function table(cells: Map<string, Cell>, impls: Impl[]): string {
  const peers = impls.filter((i) => i !== 'ringswarm');
  const head = ['ranks', 'size', ...(impls.includes('ringswarm') ? ['rs algo'] : []), ...impls.map((i) => `${LABEL[i]} time`), ...impls.map((i) => `${LABEL[i]} busbw`), ...peers.map((p) => `rs/${LABEL[p]}`)];
  const rows: string[][] = [];
  for (const { ranks: n, bytes: b } of opts.shapes) {
    const c = (i: Impl): Cell => cells.get(key(i, n, b))!;
    const rs = c('ringswarm');
    rows.push([
      String(n), fmtSize(b),
      ...(impls.includes('ringswarm') ? [rsAlgo(n, b)] : []),
      ...impls.map((i) => fmtUs(c(i))),
      ...impls.map((i) => fmtBw(c(i))),
      ...peers.map((p) => (impls.includes('ringswarm') ? fmtRatio(ratio(rs.timeUs, c(p).timeUs)) : '-')),
    ]);
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const left = impls.includes('ringswarm') ? 3 : 2;
  const line = (r: string[]): string => r.map((s, i) => (i < left ? s.padEnd(w[i]) : s.padStart(w[i]))).join('  ').trimEnd();
  return [line(head), line(w.map((x) => '-'.repeat(x))), ...rows.map(line)].join('\n');
}

const key = (impl: Impl, n: number, b: number): string => `${impl}/${n}/${b}`;

/** ringswarm's time over the peer's within each repeat (the two measured minutes apart, not hours). */
function paired(ms: Measurement[], peer: Impl, n: number, b: number): number[] {
  const out: number[] = [];
  for (let rep = 0; rep < opts.repeats; rep++) {
    const at = (i: Impl) => ms.find((m) => m.impl === i && m.ranks === n && m.bytes === b && m.repeat === rep && m.status === 'ok');
    const rs = at('ringswarm');
    const p = at(peer);
    if (rs && p && p.timeUs! > 0) out.push(rs.timeUs! / p.timeUs!);
  }
  return out;
}
const fmtPaired = (xs: number[]): string =>
  xs.length < 2 ? '' : `; per repeat ${xs.map((x) => x.toFixed(2)).join(', ')} (median ${median(xs).toFixed(2)}x)`;

function targets(cells: Map<string, Cell>, ms: Measurement[]): Target[] {
  const out: Target[] = [];
  const na = (c: Cell | undefined, impl: Impl): string =>
    c ? `${LABEL[c.impl]} ${c.status}${c.reason ? ` (${c.reason})` : ''}` : `${LABEL[impl]} not measured`;
  const pair = (n: number, b: number, peer: Impl): [Cell, Cell] | string => {
    const rs = cells.get(key('ringswarm', n, b));
    const p = cells.get(key(peer, n, b));
    if (!opts.shapes.some((x) => x.ranks === n && x.bytes === b)) return `${n} x ${fmtSize(b)} not among the shapes`;
    if (rs?.status !== 'ok' || p?.status !== 'ok') return [rs?.status === 'ok' ? undefined : na(rs, 'ringswarm'), p?.status === 'ok' ? undefined : na(p, peer)].filter(Boolean).join('; ');
    return [rs, p];
  };
  {
    const name = '(1) 64 MiB x 4 workers x 1 card: ringswarm busbw >= 0.9 x C ring busbw';
    const r = pair(4, 64 << 20, 'c-ring');
    if (typeof r === 'string') out.push({ name, result: 'N/A', detail: r });
    else {
      const [rs, c] = r;
      out.push({
        name,
        result: rs.busbwGBps! >= 0.9 * c.busbwGBps! ? 'PASS' : 'MISS',
        detail: `${rs.busbwGBps!.toFixed(3)} (${rsAlgo(4, 64 << 20)}) vs ${c.busbwGBps!.toFixed(3)} GB/s: ${fmtRatio(ratio(rs.busbwGBps, c.busbwGBps))} the C ring's busbw (target 0.90x); ${fmtTime(rs.timeUs!)} vs ${fmtTime(c.timeUs!)} an op` +
          fmtPaired(paired(ms, 'c-ring', 4, 64 << 20).map((x) => 1 / x)).replace('per repeat', 'busbw ratio per repeat'),
      });
    }
  }
  {
    const name = '(2) 8 B x 8 workers: ringswarm time <= 1.5 x Node ring time';
    const r = pair(8, 8, 'raw-tcp');
    if (typeof r === 'string') out.push({ name, result: 'N/A', detail: r });
    else {
      const [rs, t] = r;
      out.push({
        name,
        result: rs.timeUs! <= 1.5 * t.timeUs! ? 'PASS' : 'MISS',
        detail: `${fmtTime(rs.timeUs!)} (${rsAlgo(8, 8)}) vs ${fmtTime(t.timeUs!)}: ${fmtRatio(ratio(rs.timeUs, t.timeUs))} the Node ring's time (target 1.50x)` +
          fmtPaired(paired(ms, 'raw-tcp', 8, 8)).replace('per repeat', 'time ratio per repeat'),
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const started = Date.now();
  const deadline = started + opts.timeout * 1000;
  const load0 = os.loadavg();
  // Backstop: whatever happens, the script ends.
  setTimeout(() => {
    process.stderr.write(`bench-peers: global timeout of ${opts.timeout} s; killing everything\n`);
    killAll('SIGKILL');
    process.exit(124);
  }, opts.timeout * 1000 + 30_000).unref();

  const impls = IMPLS.filter((i) => opts.impls.includes(i));
  if (impls.includes('gloo')) {
    glooSkip = checkGloo();
    if (glooSkip) process.stderr.write(`bench-peers: gloo skipped: ${glooSkip}\n`);
  }
  if (impls.includes('c-ring')) {
    cRing = buildCRing();
    process.stderr.write(cRing.ok ? `bench-peers: built ${path.relative(ROOT, cRing.bin)} with cc -O2 (${cRing.cc})\n` : `bench-peers: C ring skipped: ${cRing.reason}\n`);
  }
  if (impls.includes('ringswarm') && !existsSync(RINGSWARM_CHILD)) {
    process.stderr.write(`bench-peers: ${path.relative(ROOT, RINGSWARM_CHILD)} does not exist yet; ringswarm rows will be 'missing'\n`);
  }
  process.stderr.write(
    `bench-peers: shapes ${opts.shapes.map((x) => `${x.ranks} x ${fmtSize(x.bytes)}`).join(', ')}; ${opts.iters} iters + ${opts.warmup} warmup ` +
      `(under 1 MiB: ${opts.itersSmall} + ${opts.warmupSmall}), ${opts.repeats} repeats of [${impls.join(', ')}] interleaved; ` +
      `${os.cpus().length} CPUs, load average ${load0.map((x) => x.toFixed(1)).join(' ')}\n`,
  );

  const ms: Measurement[] = [];
  let cutShort = false;
  const progress = new ScriptProgress('bench-peers', opts.shapes.length * opts.repeats * impls.length, { unit: 'measurements', deadline });
  outer: for (const { ranks: n, bytes: b } of opts.shapes) {
    for (let rep = 0; rep < opts.repeats; rep++) {
      const order = impls.map((_, i) => impls[(i + rep) % impls.length]);
      for (const impl of order) {
        if (interrupted) break outer;
        const left = Math.floor((deadline - Date.now()) / 1000);
        if (left < 5) {
          cutShort = true;
          break outer;
        }
        const q = impl === 'gloo' && glooSkip ? { waitedS: 0, runnable: null } : await waitQuiet(deadline);
        progress.running(`${LABEL[impl]}, ${n} ranks, ${fmtSize(b)}`);
        const m = await measure(impl, n, b, rep, Math.min(opts.runTimeout, left));
        progress.advance(1, '');
        m.runnableBefore = q.runnable;
        if (opts.quiet !== undefined) m.quietWaitS = q.waitedS;
        ms.push(m);
        if (m.status === 'skipped') continue; // said once above
        const what = m.status === 'ok'
          ? `${fmtTime(m.timeUs!)}, busbw ${m.busbwGBps!.toFixed(3)} GB/s${m.wrong ? `, WRONG ${m.wrong}` : ''}`
          : `${m.status}${m.reason ? `: ${m.reason}` : ''}`;
        progress.warn(`  [${n} ranks, ${fmtSize(b)}, ${rep + 1}/${opts.repeats}] ${LABEL[impl].padEnd(9)} ${what}${m.wallMs !== undefined ? ` (${(m.wallMs / 1000).toFixed(1)} s${m.cpuS != null ? `, ${m.cpuS.toFixed(1)} s CPU` : ''}, load ${m.load1?.toFixed(1)}, ${m.runnableBefore ?? '?'} runnable before${m.quietWaitS && m.quietWaitS >= 1 ? ` after waiting ${m.quietWaitS.toFixed(0)} s` : ''})` : ''}`);
      }
    }
  }
  progress.end();
  if (interrupted) return 130;

  const cells = new Map<string, Cell>();
  for (const impl of impls) for (const { ranks: n, bytes: b } of opts.shapes) cells.set(key(impl, n, b), summarize(ms, impl, n, b));
  const ts = targets(cells, ms);
  const wrongRuns = ms.filter((m) => (m.wrong ?? 0) > 0);
  const errors = ms.filter((m) => m.status === 'error');

  // Skipped tools get a line, not columns.
  const shown = impls.filter((i) => ![...cells.values()].every((c) => c.impl !== i || c.status === 'skipped'));
  const load1 = os.loadavg();
  let out = `\nall-reduce, f32 sum, 1 card per worker; time an op (${opts.stat} of ${opts.repeats} interleaved runs, each the median of its iterations), ` +
    `busbw in GB/s (nccl-tests); rs/X = ringswarm's time / X's time\n`;
  out += `${os.cpus().length} CPUs (${os.cpus()[0]?.model?.trim() ?? '?'}), Node ${process.version}, load average ${load0[0].toFixed(1)} at the start, ${load1[0].toFixed(1)} at the end\n`;
  out += table(cells, shown) + '\n';
  for (const impl of impls.filter((i) => !shown.includes(i))) {
    const c = [...cells.values()].find((x) => x.impl === impl);
    out += `${LABEL[impl]} skipped: ${c?.reason ?? (impl === 'gloo' ? glooSkip : '?')}\n`;
  }
  const notes = [...cells.values()].filter((c) => c.reason && c.status !== 'skipped');
  for (const c of notes) out += `note: ${LABEL[c.impl]}, ${c.ranks} ranks, ${fmtSize(c.bytes)}: ${c.status === 'ok' ? '' : `${c.status}: `}${c.reason}\n`;

  let extra: Awaited<ReturnType<typeof extraTargets>> | null = null;
  if ((opts.startup || opts.checkpoint || opts.floor) && !interrupted) {
    process.stderr.write(`bench-peers: targets${opts.startup ? ' 4' : ''}${opts.checkpoint ? ' 3' : ''}${opts.floor ? ' 5' : ''}\n`);
    extra = await extraTargets({
      startup: opts.startup,
      checkpoint: opts.checkpoint,
      floor: opts.floor,
      repeats: opts.repeats,
      scaleRepeats: opts.scaleRepeats,
      demoSteps: opts.demoSteps,
      scaleSteps: opts.scaleSteps,
      demo: opts.demoShape,
      scale: opts.scaleShape,
      cRing: cRing?.ok ? { bin: cRing.bin } : { reason: cRing?.reason ?? 'the C ring is not in --impls' },
      deadline,
      log: (line) => process.stderr.write(line + '\n'),
      track: (stop) => {
        liveOther.add(stop);
        return () => liveOther.delete(stop);
      },
      interrupted: () => interrupted,
    });
    if (interrupted) return 130;
    if (Date.now() > deadline - 5000) cutShort = true;
    out += extra.text;
  }

  out += '\ntargets (issue 10)\n';
  for (const t of ts) out += `  ${t.result.padEnd(4)}  ${t.name}: ${t.detail}\n`;
  for (const t of extra?.targets ?? []) out += `  ${t.result.padEnd(4)}  ${t.name}: ${t.detail}\n`;
  if (!opts.startup) out += '  -     (4) 256 workers ready <= 2 x 256 bare Node processes: not measured (--startup)\n';
  if (!opts.checkpoint) out += '  -     (3) checkpoint every step <= 1.05 x no checkpoints: not measured (--checkpoint)\n';
  if (!opts.floor) out += "  -     (5) step time <= 3 x its floor: not measured (--floor)\n";
  if (extra && extra.wrongRuns > 0) out += `\nWRONG RESULTS in ${extra.wrongRuns} ringswarm run(s) of targets 3-5 (see above)\n`;
  if (extra && extra.failedRuns > 0) out += `\n${extra.failedRuns} run(s) of targets 3-5 failed (see above)\n`;
  if (wrongRuns.length > 0) {
    out += `\nWRONG RESULTS in ${wrongRuns.length} run(s):\n`;
    for (const m of wrongRuns) out += `  ${LABEL[m.impl]}, ${m.ranks} ranks, ${fmtSize(m.bytes)}, repeat ${m.repeat + 1}: ${m.wrong} wrong elements\n`;
  }
  if (errors.length > 0) out += `\n${errors.length} run(s) failed (see notes above)\n`;
  if (cutShort) out += `\nglobal timeout of ${opts.timeout} s reached: results are partial\n`;
  out += `wall ${((Date.now() - started) / 1000).toFixed(0)} s\n`;
  process.stdout.write(out);

  const exitCode = wrongRuns.length > 0 || (extra?.wrongRuns ?? 0) > 0 ? 1 : cutShort ? 124 : errors.length > 0 || (extra?.failedRuns ?? 0) > 0 ? 2 : 0;
  if (opts.json) {
    const doc = {
      date: new Date(started).toISOString(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memBytes: os.totalmem(), node: process.version, platform: `${os.type()} ${os.release()}`, loadavgStart: load0, loadavgEnd: load1 },
      config: { shapes: opts.shapes, iters: opts.iters, warmup: opts.warmup, itersSmall: opts.itersSmall, warmupSmall: opts.warmupSmall, repeats: opts.repeats, stat: opts.stat, impls },
      definitions: "algbw = bytes / time; busbw = algbw * 2(n-1)/n; GB = 1e9 bytes; time = median over iterations of the max over ranks; ratios = ringswarm's time / the peer's",
      glooSkipped: impls.includes('gloo') ? glooSkip : 'not in --impls',
      cRing: cRing && (cRing.ok ? { cc: cRing.cc } : { skipped: cRing.reason }),
      cells: [...cells.values()],
      targets: [...ts, ...(extra?.targets ?? [])],
      extra: extra?.data ?? null,
      measurements: ms,
      wrongRuns: wrongRuns.length,
      failedRuns: errors.length,
      partial: cutShort,
      exitCode,
      wallS: (Date.now() - started) / 1000,
    };
    writeFileSync(opts.json, JSON.stringify(doc, null, 2) + '\n');
    process.stderr.write(`bench-peers: wrote ${opts.json}\n`);
  }
  return exitCode;
}

main().then(
  (code) => {
    killAll('SIGKILL');
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`bench-peers: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killAll('SIGKILL');
    process.exit(2);
  },
);
