// Real-process test helpers: run the built CLI, find and check processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

export interface CliRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first stdout/stderr text matching `re`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

const running = new Set<ChildProcess>();

export function startCli(args: string[], env?: Record<string, string>, o: { cwd?: string } = {}): CliRun {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}), ...(o.cwd ? { cwd: o.cwd } : {}) });
  running.add(child);
  let out = '';
  let err = '';
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const m = (out + err).match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stdout!.setEncoding('utf8').on('data', (s: string) => ((out += s), check()));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => ((err += s), check()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // 'close', not 'exit': it comes once stdout and stderr are read to the end (a long JSON report may still be in the pipe at exit).
    child.on('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(re, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}; output so far:\n${out}\n${err}`)), timeoutMs);
        waiters.push({
          re,
          resolve: (m) => {
            clearTimeout(t);
            resolve(m);
          },
        });
        check();
      });
    },
  };
}

export async function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = startCli(args);
  const { code } = await r.exited;
  // A run that ends, however it ends, removes its checkpoint slots: one left behind fails the test.
  const left = slotDirsOf(r.child.pid!);
  if (left.length) throw new Error(`ringswarm ${args.join(' ')} left ${left.map((d) => `/dev/shm/${d}`).join(', ')} behind\n${r.stderr()}`);
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

/** Kill whatever a failed test left running. */
export function killLeftovers(): void {
  for (const c of running) c.kill('SIGKILL');
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers kill(0); it is dead for our purposes.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The checkpoint slot folders in /dev/shm of the coordinator with pid `pid`: a run that ends removes its own. */
export function slotDirsOf(pid: number): string[] {
  try {
    return readdirSync('/dev/shm').filter((d) => d.startsWith(`ringswarm-${pid}-`));
  } catch {
    return [];
  }
}

/** Pids whose parent is `ppid` (from /proc). */
export function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid) out.push(Number(d));
    } catch {
      // raced with an exit
    }
  }
  return out;
}

export async function waitUntil(cond: () => boolean, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}
