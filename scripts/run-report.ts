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
}

export interface Finished<T> {
  /** Null when stdout was no JSON (the child failed before its report). */
  report: T | null;
  timedOut: boolean;
  code: number | null;
  stderrTail: string;
}

/** `ringswarm <command> ... --json -` as a child, with its pid (to sample /proc while it runs). */
export function startCli<T>(command: 'run' | 'bench', args: string[], o: CliOptions): { pid: number; done: Promise<Finished<T>> } {
  const child = spawn(process.execPath, [CLI, command, ...args, '--json', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let timedOut = false;
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
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
