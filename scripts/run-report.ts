// Run `ringswarm run ... --json -` (or `bench`) as a child process and return its report (for the scripts).
// Bounded: after `timeoutMs` the run is interrupted (SIGINT), which still prints a partial report.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

export interface CliOptions {
  timeoutMs: number;
  /** SIGKILL this long after the SIGINT, for a child that does not stop; none when unset. */
  killAfterMs?: number;
  /** How much of stderr to keep (the end of it). */
  stderrChars: number;
  /** Every piece of stderr as it comes (e.g. to follow the progress lines). */
  onStderr?: (s: string) => void;
  /** Run the child with V8's --trace-gc and hand over the heap left by each full GC (its live data). */
  onFullGc?: (heapMB: number) => void;
}

/** A --trace-gc line of a full GC: `[pid:0x...]  1234 ms: Mark-Compact 55.5 (74.2) -> 45.7 (80.3) MB, ...`. */
const FULL_GC = /^\[\d+:0x[0-9a-f]+\]\s+[\d.]+ ms: Mark-Compact[^\d]*[\d.]+ \([\d.]+\) -> ([\d.]+) \(/;
const GC_TRACE = /^\[\d+:0x[0-9a-f]+\]/;

export interface Finished<T> {
  /** Null when stdout was no JSON (the child failed before its report). */
  report: T | null;
  timedOut: boolean;
  code: number | null;
  stderrTail: string;
}

/** `ringswarm <command> ... --json -` as a child, with its pid (to sample /proc while it runs). */
export function startCli<T>(command: 'run' | 'bench', args: string[], o: CliOptions): { pid: number; done: Promise<Finished<T>> } {
  const nodeArgs = o.onFullGc ? ['--trace-gc'] : [];
  const child = spawn(process.execPath, [...nodeArgs, CLI, command, ...args, '--json', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let timedOut = false;
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    if (!o.onFullGc) return void (out += s);
    // The GC's lines are V8's, not the report's: taken out, the full GCs' heaps handed over.
    const lines = (partial + s).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      if (!GC_TRACE.test(l)) out += `${l}\n`;
      const m = FULL_GC.exec(l);
      if (m) o.onFullGc(Number(m[1]));
    }
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    err = (err + s).slice(-o.stderrChars);
    o.onStderr?.(s);
  });
  const soft = setTimeout(() => {
    timedOut = true;
    child.kill('SIGINT');
  }, o.timeoutMs);
  const hard = o.killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), o.timeoutMs + o.killAfterMs);
  const done = new Promise<Finished<T>>((resolve) => {
    // 'close': after stdout is read to the end (at 'exit' a long report may still be in the pipe).
    child.on('close', (code) => {
      clearTimeout(soft);
      clearTimeout(hard);
      if (!GC_TRACE.test(partial)) out += partial;
      let report: T | null = null;
      try {
        report = JSON.parse(out) as T;
      } catch {
        /* no report: the caller judges it */
      }
      resolve({ report, timedOut, code, stderrTail: err });
    });
  });
  return { pid: child.pid!, done };
}

export async function runReport<T>(args: string[], timeoutMs: number): Promise<T> {
  const { report, stderrTail } = await startCli<T>('run', args, { timeoutMs, stderrChars: 2000 }).done;
  if (report === null) throw new Error(`ringswarm run ${args.join(' ')} printed no report:\n${stderrTail}`);
  return report;
}
