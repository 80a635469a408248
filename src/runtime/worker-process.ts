// One worker child process, owned from spawn to reap: explicit states, SIGTERM then SIGKILL on
// stop, and exits described by code, signal and state.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setPriority } from 'node:os';

export type WorkerProcessState = 'starting' | 'started' | 'stopping' | 'stopped';

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** State the process was in when it exited: 'stopping' means we asked it to. */
  state: WorkerProcessState;
}

export interface WorkerProcessOptions {
  workerId: string;
  controlUrl: string;
  token: string;
  host: string;
  /** The address its peers dial, when not `host`. */
  advertise?: string | null;
  /** Its nice value (0: the coordinator's own). */
  nice?: number;
  log: (line: string) => void;
}

// The worker as one bundled file starts in about half the time of the module tree (measured: 125 vs
// 250 ms per process), which is what bounds the time to spawn hundreds of them.
// It runs from V8's code cache through worker-loader.cjs (see src/worker/loader.ts).
const LOADER_ENTRY = fileURLToPath(new URL('../../worker-loader.cjs', import.meta.url));
const BUNDLED_ENTRY = fileURLToPath(new URL('../../worker.cjs', import.meta.url));
/**
 * A worker's V8 heap: young-generation semi-spaces of 1 MiB, not V8's default of up to 16 (8 here
 * after start). A worker's bulk data lives in its arena and typed arrays, not on the JS heap, and
 * its short-lived objects fit in 1 MiB: measured on the demo shape (16 x 8 x 1 MiB, checkpoints
 * on), a worker's RSS max 129 MB against 142 with the default, step and all-reduce times the same
 * (interleaved, 2x each; and 64 MiB x 4 and 8 B x 8 bench ops too). Workers a launcher starts
 * (`ringswarm worker` under srun, mpirun or a Job) get the same from NODE_OPTIONS=--max-semi-space-size=1.
 */
const WORKER_V8_FLAGS: readonly string[] = ['--max-semi-space-size=1'];
export const WORKER_ENTRY = existsSync(LOADER_ENTRY) && existsSync(BUNDLED_ENTRY) ? LOADER_ENTRY : existsSync(BUNDLED_ENTRY) ? BUNDLED_ENTRY : fileURLToPath(new URL('../worker/main.js', import.meta.url));

/**
 * Nice `pid` to `nice`. A worker leads its own session (detached), so with Linux's autogroup
 * scheduling (sched_autogroup_enabled) it is its own scheduling group, and the CPU is shared
 * between groups whatever their processes' nice values: the group's nice (/proc/PID/autogroup) is
 * what yields the CPU to the coordinator. Without autogroup the file is absent and the process's
 * nice value does it.
 */
function lowerPriority(pid: number, nice: number, log: (line: string) => void): void {
  try {
    setPriority(pid, nice);
  } catch (e) {
    log(`could not set its nice value to ${nice}: ${(e as Error).message}`);
  }
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(nice));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ESRCH') log(`could not set its scheduling group's nice value to ${nice}: ${(e as Error).message}`);
  }
}

export class WorkerProcess {
  state: WorkerProcessState = 'starting';
  private child: ChildProcess | null = null;
  private resolveExit!: (e: WorkerExit) => void;
  readonly exited = new Promise<WorkerExit>((r) => (this.resolveExit = r));
  exit: WorkerExit | null = null;

  constructor(private readonly o: WorkerProcessOptions) {}

  get workerId(): string {
    return this.o.workerId;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Lower its priority to `nice` (see lowerPriority); nothing once it has exited. */
  renice(nice: number): void {
    if (this.child?.pid !== undefined && this.state !== 'stopped') lowerPriority(this.child.pid, nice, (l) => this.o.log(`[${this.o.workerId}] ${l}`));
  }

  start(): void {
    // RINGSWARM_WORKER_NODE_ARGS passes flags to every worker's node (e.g. --cpu-prof for profiling).
    const nodeArgs = (process.env.RINGSWARM_WORKER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
    const child = spawn(process.execPath, [...WORKER_V8_FLAGS, ...nodeArgs, WORKER_ENTRY], {
      env: {
        ...process.env,
        RINGSWARM_CONTROL_URL: this.o.controlUrl,
        RINGSWARM_TOKEN: this.o.token,
        RINGSWARM_WORKER_ID: this.o.workerId,
        RINGSWARM_SPAWNED: '1',
        RINGSWARM_HOST: this.o.host,
        ...(this.o.advertise ? { RINGSWARM_ADVERTISE_ADDR: this.o.advertise } : {}),
      },
      // Own process group: a terminal's Ctrl-C reaches the coordinator, which then stops workers in order.
      detached: true,
      // Anything a worker prints reaches the coordinator's log, never its stdout (which may be JSON).
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let tail = '';
    const forward = (s: string) => {
      const lines = (tail + s).split('\n');
      tail = lines.pop() ?? '';
      for (const l of lines) if (l) this.o.log(l);
    };
    child.stdout?.setEncoding('utf8').on('data', forward);
    child.stderr?.setEncoding('utf8').on('data', forward);
    child.on('spawn', () => {
      if (this.state === 'starting') this.state = 'started';
      if (this.o.nice && child.pid !== undefined) lowerPriority(child.pid, this.o.nice, (l) => this.o.log(`[${this.o.workerId}] ${l}`));
    });
    child.on('error', (e) => this.o.log(`[${this.o.workerId}] spawn failed: ${e.message}`));
    child.on('exit', (code, signal) => {
      if (tail) this.o.log(tail);
      this.exit = { code, signal, state: this.state };
      this.state = 'stopped';
      this.resolveExit(this.exit);
    });
  }

  /**
   * What the kernel says of the process (Linux /proc): 'stopped' (SIGSTOP), 'dead' (gone or a
   * zombie), 'alive' (running or waiting: slow, perhaps, but not frozen), or 'unknown'.
   */
  kernelState(): 'alive' | 'stopped' | 'dead' | 'unknown' {
    const pid = this.child?.pid;
    if (pid === undefined || this.state === 'stopped') return 'dead';
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const s = stat.charAt(stat.lastIndexOf(')') + 2);
      return s === 'T' || s === 't' ? 'stopped' : s === 'Z' || s === 'X' ? 'dead' : 'alive';
    } catch {
      return process.platform === 'linux' ? 'dead' : 'unknown';
    }
  }

  /** Send a signal (fault injection, or stopping). False if the process is gone. */
  kill(signal: NodeJS.Signals): boolean {
    if (!this.child || this.state === 'stopped') return false;
    try {
      return this.child.kill(signal);
    } catch {
      return false;
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is reaped. */
  async stop(graceMs = 1000): Promise<WorkerExit> {
    if (this.state === 'stopped' && this.exit) return this.exit;
    if (!this.child) {
      this.state = 'stopped';
      this.exit = { code: null, signal: null, state: 'stopped' };
      this.resolveExit(this.exit);
      return this.exit;
    }
    if (this.state !== 'stopping') {
      this.state = 'stopping';
      this.kill('SIGTERM');
    }
    const t = setTimeout(() => this.kill('SIGKILL'), graceMs);
    const e = await this.exited;
    clearTimeout(t);
    return e;
  }

  /** Wait for the process to exit by itself, then stop it if it has not within `graceMs`. */
  async reap(graceMs: number): Promise<WorkerExit> {
    const t = setTimeout(() => void this.stop(), graceMs);
    const e = await this.exited;
    clearTimeout(t);
    return e;
  }
}

export function describeExit(e: WorkerExit): string {
  const how = e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
  return `${how} while ${e.state}`;
}
