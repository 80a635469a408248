// One job of the typed API (`run` or `bench`, described by its options) in a child process, for the
// scripts: scripts/api-child.ts, forked with an IPC channel, sends back the typed report, its log
// lines and (on request) the run's events. The child is the coordinator, so its pid is the one to
// sample in /proc. Bounded: after `timeoutMs` the child gets SIGINT, and a run still sends its
// partial report (interrupted: true); SIGKILL `killAfterMs` later, when set.
// stopOnSigint() makes a script's own Ctrl-C do the same to the job under way, and tells its loop to
// stop starting jobs.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchOptions, BenchReport, RunEvent, RunOptions, RunReport } from '../src/api/index.js';
import type { ChildMessage } from './api-child.js';

/** The child runner, compiled: next to this file in dist/scripts (from the sources, as in the tests: the built one). */
const HERE = fileURLToPath(import.meta.url);
export const API_CHILD = HERE.endsWith('.ts') ? path.resolve(path.dirname(HERE), '..', 'dist', 'scripts', 'api-child.js') : path.join(path.dirname(HERE), 'api-child.js');

export interface ChildOptions {
  timeoutMs: number;
  /** SIGKILL this long after the SIGINT, for a child that does not stop; none when unset. */
  killAfterMs?: number;
  /** How much of the job's log and the child's stderr to keep (the end of it). */
  stderrChars: number;
  /** Each log line of the job as it comes. */
  onLog?: (line: string) => void;
  /** Each event of a run as it comes (ready, step, fault, straggler, epoch). */
  onEvent?: (e: RunEvent) => void;
  /** Run the child with V8's --trace-gc and hand over the heap left by each full GC (its live data). */
  onFullGc?: (heapMB: number) => void;
}

/** A --trace-gc line of a full GC: `[pid:0x...]  1234 ms: Mark-Compact 55.5 (74.2) -> 45.7 (80.3) MB, ...`. */
const FULL_GC = /^\[\d+:0x[0-9a-f]+\]\s+[\d.]+ ms: Mark-Compact[^\d]*[\d.]+ \([\d.]+\) -> ([\d.]+) \(/;

export interface Finished<T> {
  /** Null when the child sent no report (options refused, or it died first). */
  report: T | null;
  /** The options were refused (RingswarmUsageError) or the job threw: its message. */
  error: { name: string; message: string; code?: string } | null;
  timedOut: boolean;
  /** The child's exit status (see api-child.ts), or null when a signal ended it. */
  code: number | null;
  /** The end of the job's log lines and the child's stderr. */
  stderrTail: string;
}

const live = new Set<ChildProcess>();
let interrupted = false;
let sigintInstalled = false;

/** True once the script got SIGINT or SIGTERM (after stopOnSigint()): start no more jobs. */
export const isInterrupted = (): boolean => interrupted;

/**
 * The script's SIGINT/SIGTERM stop the job under way (it still reports: partial, interrupted) and
 * make isInterrupted() true, so the script prints what it has; a second one exits at once (130).
 */
export function stopOnSigint(onFirst?: (sig: NodeJS.Signals) => void): void {
  if (sigintInstalled) return;
  sigintInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (interrupted) {
        for (const c of live) c.kill('SIGKILL');
        process.exit(sig === 'SIGINT' ? 130 : 143);
      }
      interrupted = true;
      onFirst?.(sig);
      // A terminal's Ctrl-C reaches the children too; a `kill` of this script alone does not.
      for (const c of live) c.kill('SIGINT');
    });
  }
}

export interface Started<T> {
  pid: number;
  done: Promise<Finished<T>>;
  /** Stop the job: a run still reports (interrupted: true). */
  stop(): void;
}

/** `run` or `bench` of the API, with these options, in a child process. */
export function startJob(command: 'run', options: RunOptions, o: ChildOptions): Started<RunReport>;
export function startJob(command: 'bench', options: BenchOptions, o: ChildOptions): Started<BenchReport>;
export function startJob<T>(command: 'run' | 'bench', options: RunOptions | BenchOptions, o: ChildOptions): Started<T> {
  const args = [command, JSON.stringify(options), ...(o.onEvent ? ['--events'] : [])];
  const child = fork(API_CHILD, args, { execArgv: o.onFullGc ? ['--trace-gc'] : [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  live.add(child);
  if (interrupted) child.kill('SIGINT');
  let tail = '';
  const keep = (s: string) => (tail = (tail + s).slice(-o.stderrChars));
  let report: T | null = null;
  let error: Finished<T>['error'] = null;
  let timedOut = false;
  child.on('message', (m: ChildMessage) => {
    if (m.type === 'log') {
      keep(`${m.line}\n`);
      o.onLog?.(m.line);
    } else if (m.type === 'event') o.onEvent?.(m.event as unknown as RunEvent);
    else if (m.type === 'report') report = m.report as T;
    else if (m.type === 'error') error = m.error;
  });
  // stdout carries nothing of the job's: only V8's --trace-gc lines.
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    if (!o.onFullGc) return;
    const lines = (partial + s).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      const m = FULL_GC.exec(l);
      if (m) o.onFullGc(Number(m[1]));
    }
  });
  child.stderr!.setEncoding('utf8').on('data', keep);
  const soft = setTimeout(() => {
    timedOut = true;
    child.kill('SIGINT');
  }, o.timeoutMs);
  const hard = o.killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), o.timeoutMs + o.killAfterMs);
  const done = new Promise<Finished<T>>((resolve) => {
    child.on('close', (code) => {
      clearTimeout(soft);
      clearTimeout(hard);
      live.delete(child);
      resolve({ report, error, timedOut, code, stderrTail: tail });
    });
  });
  return { pid: child.pid!, done, stop: () => child.kill('SIGINT') };
}

/** A run's report; throws when there is none (options refused, the child died). */
export async function runReport(options: RunOptions, timeoutMs: number): Promise<RunReport> {
  const { report, error, code, stderrTail } = await startJob('run', options, { timeoutMs, stderrChars: 2000 }).done;
  if (report === null) throw new Error(`run ${JSON.stringify(options)} gave no report (exit ${code}): ${error ? error.message : stderrTail}`);
  return report;
}

/** A bench's report; throws when there is none. */
export async function benchReport(options: BenchOptions, timeoutMs: number): Promise<BenchReport> {
  const { report, error, code, stderrTail } = await startJob('bench', options, { timeoutMs, stderrChars: 2000 }).done;
  if (report === null) throw new Error(`bench ${JSON.stringify(options)} gave no report (exit ${code}): ${error ? error.message : stderrTail}`);
  return report;
}

const q = (s: string) => (/^[\w./:=,@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * For people only: the CLI line that runs the same job (options are the CLI's flags in camelCase),
 * printed so that a failure can be replayed by hand. The scripts themselves never run it.
 */
export function cliLine(command: 'run' | 'bench', options: RunOptions | BenchOptions): string {
  const parts = ['node', 'dist/src/cli/main.js', command];
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    if (k === 'algos' && Array.isArray(v)) parts.push('--algo', v.join(','));
    else if (k === 'checksums') parts.push('--checksum', v ? 'crc32c' : 'none');
    else if (k === 'stragglerPersist' && Array.isArray(v)) parts.push('--straggler-persist', v.join('/'));
    else if (Array.isArray(v)) for (const x of v) parts.push(`--${kebab(k)}`, q(String(x)));
    else if (typeof v === 'object') parts.push(`--${kebab(k)}`, q(JSON.stringify(v)));
    else parts.push(`--${kebab(k)}`, q(String(v)));
  }
  return parts.join(' ');
}
