// `npm run bench:peers`: ringswarm's all-reduce against two peers on the same machine, in one run.
//
//   ringswarm  node dist/src/cli/main.js bench -w N -g 1 -b S -e S -n K --warmup W
//                   --collective allreduce -d f32 -o sum --json -
//   raw-tcp    node dist/scripts/raw-tcp-ring.js --ranks N --sizes S --iters K --warmup W --json
//   gloo       /usr/bin/python3 scripts/gloo_allreduce.py --ranks N --sizes S --iters K --warmup W
//              (only when `/usr/bin/python3 -c 'import torch'` works; else skipped, with the reason)
//
// For every (ranks, size) the three are interleaved, R times (--repeats, default 3) with the order
// rotated each time, so that this machine's drift hits them alike; a cell reports the best (or,
// with --stat median, the median) of the R measurements, each of which is itself the median over
// K timed iterations. busbw follows nccl-tests: algbw = bytes / time, busbw = algbw * 2(n-1)/n,
// GB = 1e9 bytes; it is recomputed here from each tool's time so all three use one definition.
//
// Then the targets: at 64 MiB, ringswarm busbw >= gloo and >= 0.9 x raw-TCP (for every ranks
// count measured); 8-byte all-reduce on 8 ranks within 2x the raw-TCP time. A missed target is
// printed, not an error.
//
// Exit code: 0; 1 if any run reported wrong elements; 2 if a run failed (crashed, timed out, bad
// output; a ringswarm CLI that is not built yet is "missing", not a failure) or for a usage error;
// 124 when the global timeout cut the run short; 130/143 when interrupted. Every spawned process is reaped.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError } from 'commander';

type Impl = 'ringswarm' | 'raw-tcp' | 'gloo';
const IMPLS: Impl[] = ['ringswarm', 'raw-tcp', 'gloo'];
const PYTHON = '/usr/bin/python3';

// dist/scripts/bench-peers.js -> project root
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RINGSWARM_CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
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

interface Opts {
  ranks: number[];
  sizes: number[];
  iters: number;
  warmup: number;
  repeats: number;
  stat: 'best' | 'median';
  impls: Impl[];
  json?: string;
  timeout: number;
  runTimeout: number;
  verbose: boolean;
}

const program = new Command()
  .name('bench-peers')
  .description('ringswarm all-reduce vs a raw-TCP ring and gloo, interleaved, on this machine')
  .option('--ranks <list>', 'ranks counts', list(posInt(1)), [2, 4, 8])
  .option('--sizes <list>', 'message sizes in bytes (K/KiB, M/MiB, G/GiB = powers of 1024)', list(parseSize), [8, 1 << 20, 64 << 20])
  .option('--iters <n>', 'timed iterations per measurement', posInt(1), 10)
  .option('--warmup <n>', 'untimed iterations per measurement', posInt(0), 3)
  .option('--repeats <n>', 'measurements per (implementation, ranks, size)', posInt(1), 3)
  .option('--stat <stat>', 'how repeats combine: best | median', (s: string) => {
    if (s !== 'best' && s !== 'median') throw new InvalidArgumentError('best or median');
    return s;
  }, 'best')
  .option('--impls <list>', 'implementations to run', list(implName), [...IMPLS])
  .option('--json <path>', 'write all figures to this file')
  .option('--timeout <s>', 'global time limit, seconds', posInt(1), 3600)
  .option('--run-timeout <s>', 'time limit of one measurement, seconds', posInt(1), 300)
  .option('--verbose', "pass the tools' stderr through", false)
  .exitOverride();
try {
  program.parse();
} catch (err) {
  // Usage errors exit 2, keeping 1 for wrong results; --help exits 0.
  process.exit(err instanceof CommanderError && err.exitCode === 0 ? 0 : 2);
}
const opts = program.opts<Opts>();

// ---------------------------------------------------------------------------------------------
// Processes: every child is tracked and killed on exit, error, signal and timeout.

const live = new Set<ChildProcess>();

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
      if (live.size === 0) process.exit(code);
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
  spawnError?: string;
}

function run(cmd: string, args: string[], timeoutS: number): Promise<Spawned> {
  return new Promise((resolve) => {
    const start = Date.now();
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
      resolve({ code, signal, stdout, stderr, timedOut, wallMs: Date.now() - start, spawnError });
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
  timeUs?: number;
  algbwGBps?: number;
  busbwGBps?: number;
  /** As reported by the tool itself (its own busbw), for reference. */
  reportedBusbwGBps?: number;
  wrong?: number;
  reason?: string;
  wallMs?: number;
}

interface ToolRow {
  bytes: number;
  timeUs: number;
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

const busbw = (bytes: number, us: number, n: number): number => (n > 1 && us > 0 ? ((bytes / us / 1e3) * 2 * (n - 1)) / n : 0);

/** The last few meaningful lines of a tool's output (stack frames left out). */
function lastLines(s: string, n = 3): string {
  const lines = s.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== '' && !/^\s+at /.test(l));
  return lines.slice(-n).join(' | ').slice(0, 600);
}

let glooSkip: string | null = null;

async function measure(impl: Impl, ranks: number, bytes: number, repeat: number, timeoutS: number): Promise<Measurement> {
  const base: Measurement = { impl, ranks, bytes, repeat, status: 'ok' };
  const it = [String(opts.iters)];
  const wu = [String(opts.warmup)];
  let cmd: string;
  let args: string[];
  switch (impl) {
    case 'ringswarm':
      if (!existsSync(RINGSWARM_CLI)) return { ...base, status: 'missing', reason: `${path.relative(ROOT, RINGSWARM_CLI)} does not exist (not built yet?)` };
      cmd = process.execPath;
      args = [RINGSWARM_CLI, 'bench', '-w', String(ranks), '-g', '1', '-b', String(bytes), '-e', String(bytes), '-n', ...it,
        '--warmup', ...wu, '--collective', 'allreduce', '-d', 'f32', '-o', 'sum', '--json', '-'];
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
  const m: Measurement = { ...base, wallMs: r.wallMs };
  const fail = (reason: string): Measurement => ({ ...m, status: 'error', reason });
  if (r.spawnError) return fail(`could not start ${cmd}: ${r.spawnError}`);
  if (r.timedOut) return fail(`timed out after ${timeoutS} s`);
  const doc = parseDoc(r.stdout);
  if (impl === 'gloo' && r.code === 3 && doc?.error) return { ...m, status: 'skipped', reason: doc.error };
  if (r.code !== 0) return fail(`exit ${r.code ?? r.signal}: ${lastLines(r.stderr) || lastLines(r.stdout)}`);
  if (!doc || !Array.isArray(doc.rows)) return fail(`no JSON result on stdout: ${lastLines(r.stdout) || lastLines(r.stderr)}`);
  const row = doc.rows.find((x) => x.bytes === bytes) ?? (doc.rows.length === 1 ? doc.rows[0] : undefined);
  if (!row || typeof row.timeUs !== 'number') return fail(`no row for ${bytes} bytes in the result`);
  return {
    ...m,
    timeUs: row.timeUs,
    algbwGBps: row.timeUs > 0 ? bytes / row.timeUs / 1e3 : 0,
    busbwGBps: busbw(bytes, row.timeUs, ranks),
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
const fmtUs = (c: Cell): string => (c.status === 'ok' ? c.timeUs!.toFixed(c.timeUs! < 1000 ? 1 : 0) : c.status);
const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
const fmtRatio = (x: number | undefined): string => (x === undefined ? '-' : `${x.toFixed(2)}x`);

function table(cells: Map<string, Cell>): string {
  const head = ['ranks', 'size', 'rs busbw', 'tcp busbw', 'gloo busbw', 'rs/tcp', 'rs/gloo', 'rs us', 'tcp us', 'gloo us', 'rs/tcp time'];
  const rows: string[][] = [];
  for (const n of opts.ranks) {
    for (const b of opts.sizes) {
      const rs = cells.get(key('ringswarm', n, b))!;
      const tcp = cells.get(key('raw-tcp', n, b))!;
      const gl = cells.get(key('gloo', n, b))!;
      const small = b <= 64;
      rows.push([
        String(n), fmtSize(b), fmtBw(rs), fmtBw(tcp), fmtBw(gl),
        fmtRatio(ratio(rs.busbwGBps, tcp.busbwGBps)), fmtRatio(ratio(rs.busbwGBps, gl.busbwGBps)),
        small ? fmtUs(rs) : '', small ? fmtUs(tcp) : '', small ? fmtUs(gl) : '',
        small ? fmtRatio(ratio(rs.timeUs, tcp.timeUs)) : '',
      ]);
    }
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]): string => r.map((s, i) => (i < 2 ? s.padEnd(w[i]) : s.padStart(w[i]))).join('  ').trimEnd();
  return [line(head), line(w.map((x) => '-'.repeat(x))), ...rows.map(line)].join('\n');
}

const key = (impl: Impl, n: number, b: number): string => `${impl}/${n}/${b}`;

interface Target {
  name: string;
  result: 'PASS' | 'FAIL' | 'N/A';
  detail: string;
}

function targets(cells: Map<string, Cell>): Target[] {
  const out: Target[] = [];
  const big = 64 << 20;
  const na = (c: Cell): string => `${c.impl} ${c.status}${c.reason ? ` (${c.reason})` : ''}`;
  if (opts.sizes.includes(big)) {
    for (const n of opts.ranks) {
      if (n < 2) continue;
      const rs = cells.get(key('ringswarm', n, big))!;
      const tcp = cells.get(key('raw-tcp', n, big))!;
      const gl = cells.get(key('gloo', n, big))!;
      {
        const name = `64 MiB, ${n} ranks: ringswarm busbw >= gloo busbw`;
        if (rs.status !== 'ok' || gl.status !== 'ok') out.push({ name, result: 'N/A', detail: [rs, gl].filter((c) => c.status !== 'ok').map(na).join('; ') });
        else out.push({ name, result: rs.busbwGBps! >= gl.busbwGBps! ? 'PASS' : 'FAIL', detail: `${rs.busbwGBps!.toFixed(3)} vs ${gl.busbwGBps!.toFixed(3)} GB/s (${fmtRatio(ratio(rs.busbwGBps, gl.busbwGBps))})` });
      }
      {
        const name = `64 MiB, ${n} ranks: ringswarm busbw >= 0.9 x raw-TCP busbw`;
        if (rs.status !== 'ok' || tcp.status !== 'ok') out.push({ name, result: 'N/A', detail: [rs, tcp].filter((c) => c.status !== 'ok').map(na).join('; ') });
        else out.push({ name, result: rs.busbwGBps! >= 0.9 * tcp.busbwGBps! ? 'PASS' : 'FAIL', detail: `${rs.busbwGBps!.toFixed(3)} vs 0.9 x ${tcp.busbwGBps!.toFixed(3)} = ${(0.9 * tcp.busbwGBps!).toFixed(3)} GB/s (${fmtRatio(ratio(rs.busbwGBps, tcp.busbwGBps))})` });
      }
    }
  } else {
    out.push({ name: '64 MiB targets', result: 'N/A', detail: '64 MiB not among --sizes' });
  }
  {
    const name = '8 B, 8 ranks: ringswarm time <= 2 x raw-TCP time';
    if (!opts.sizes.includes(8) || !opts.ranks.includes(8)) out.push({ name, result: 'N/A', detail: '8 B on 8 ranks not measured' });
    else {
      const rs = cells.get(key('ringswarm', 8, 8))!;
      const tcp = cells.get(key('raw-tcp', 8, 8))!;
      if (rs.status !== 'ok' || tcp.status !== 'ok') out.push({ name, result: 'N/A', detail: [rs, tcp].filter((c) => c.status !== 'ok').map(na).join('; ') });
      else out.push({ name, result: rs.timeUs! <= 2 * tcp.timeUs! ? 'PASS' : 'FAIL', detail: `${rs.timeUs!.toFixed(1)} vs 2 x ${tcp.timeUs!.toFixed(1)} = ${(2 * tcp.timeUs!).toFixed(1)} us (${fmtRatio(ratio(rs.timeUs, tcp.timeUs))})` });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const started = Date.now();
  const deadline = started + opts.timeout * 1000;
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
  if (impls.includes('ringswarm') && !existsSync(RINGSWARM_CLI)) {
    process.stderr.write(`bench-peers: ${path.relative(ROOT, RINGSWARM_CLI)} does not exist yet; ringswarm rows will be 'missing'\n`);
  }
  process.stderr.write(
    `bench-peers: ranks ${opts.ranks.join(',')}, sizes ${opts.sizes.map(fmtSize).join(', ')}, ${opts.iters} iters + ${opts.warmup} warmup, ` +
      `${opts.repeats} repeats of [${impls.join(', ')}] interleaved; ${os.cpus().length} CPUs\n`,
  );

  const ms: Measurement[] = [];
  let cutShort = false;
  outer: for (const n of opts.ranks) {
    for (const b of opts.sizes) {
      for (let rep = 0; rep < opts.repeats; rep++) {
        const order = impls.map((_, i) => impls[(i + rep) % impls.length]);
        for (const impl of order) {
          if (interrupted) break outer;
          const left = Math.floor((deadline - Date.now()) / 1000);
          if (left < 5) {
            cutShort = true;
            break outer;
          }
          const m = await measure(impl, n, b, rep, Math.min(opts.runTimeout, left));
          ms.push(m);
          const what = m.status === 'ok'
            ? `${m.timeUs!.toFixed(1)} us, busbw ${m.busbwGBps!.toFixed(3)} GB/s${m.wrong ? `, WRONG ${m.wrong}` : ''}`
            : `${m.status}${m.reason ? `: ${m.reason}` : ''}`;
          process.stderr.write(`  [${n} ranks, ${fmtSize(b)}, ${rep + 1}/${opts.repeats}] ${impl.padEnd(9)} ${what}${m.wallMs !== undefined ? ` (${(m.wallMs / 1000).toFixed(1)} s)` : ''}\n`);
        }
      }
    }
  }
  if (interrupted) return 130;

  const cells = new Map<string, Cell>();
  for (const impl of IMPLS) for (const n of opts.ranks) for (const b of opts.sizes) {
    const c = impls.includes(impl) ? summarize(ms, impl, n, b) : { impl, ranks: n, bytes: b, status: 'skipped' as Status, reason: 'not in --impls', n: 0, timesUs: [], wrong: 0 };
    cells.set(key(impl, n, b), c);
  }
  const ts = targets(cells);
  const wrongRuns = ms.filter((m) => (m.wrong ?? 0) > 0);
  const errors = ms.filter((m) => m.status === 'error');

  let out = `\nall-reduce, f32 sum, busbw in GB/s (nccl-tests), ${opts.stat} of ${opts.repeats} (each the median of ${opts.iters} iterations); rs = ringswarm, tcp = raw-TCP ring\n`;
  out += table(cells) + '\n';
  if (glooSkip && impls.includes('gloo')) out += `gloo skipped: ${glooSkip}\n`;
  const notes = [...cells.values()].filter((c) => c.reason && (c.status !== 'skipped' || c.impl !== 'gloo'));
  for (const c of notes) out += `note: ${c.impl}, ${c.ranks} ranks, ${fmtSize(c.bytes)}: ${c.status === 'ok' ? '' : `${c.status}: `}${c.reason}\n`;
  out += '\ntargets\n';
  for (const t of ts) out += `  ${t.result.padEnd(4)}  ${t.name}: ${t.detail}\n`;
  if (wrongRuns.length > 0) {
    out += `\nWRONG RESULTS in ${wrongRuns.length} run(s):\n`;
    for (const m of wrongRuns) out += `  ${m.impl}, ${m.ranks} ranks, ${fmtSize(m.bytes)}, repeat ${m.repeat + 1}: ${m.wrong} wrong elements\n`;
  }
  if (errors.length > 0) out += `\n${errors.length} run(s) failed (see notes above)\n`;
  if (cutShort) out += `\nglobal timeout of ${opts.timeout} s reached: results are partial\n`;
  process.stdout.write(out);

  const exitCode = wrongRuns.length > 0 ? 1 : cutShort ? 124 : errors.length > 0 ? 2 : 0;
  if (opts.json) {
    const doc = {
      date: new Date(started).toISOString(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memBytes: os.totalmem(), node: process.version, platform: `${os.type()} ${os.release()}` },
      config: { ranks: opts.ranks, sizes: opts.sizes, iters: opts.iters, warmup: opts.warmup, repeats: opts.repeats, stat: opts.stat, impls },
      definitions: 'algbw = bytes / time; busbw = algbw * 2(n-1)/n; GB = 1e9 bytes; time = median over iterations of the max over ranks',
      glooSkipped: impls.includes('gloo') ? glooSkip : 'not in --impls',
      cells: [...cells.values()],
      targets: ts,
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
