// Starts a worker in this process: data server, control connection, and the guards that make a
// worker exit by itself when its coordinator is gone (no orphans, ever).
import { CoordinatorMessage, type WorkerMessage } from '../protocol/control.js';
import { Worker } from './worker.js';
import { connectControl } from '../runtime/control-client.js';
import { checkpointDisk } from '../runtime/checkpoint-disk.js';
import { fileSlots } from '../runtime/shared-slots.js';
import { FramePool } from '../runtime/frame-pool.js';
import { cpuTimesReader, cpuWaitReader } from '../runtime/cpu-wait.js';
import { selfPssMB } from '../runtime/memory.js';
import { WsTransport } from '../runtime/ws-transport.js';
import { realClock } from '../runtime/clock.js';
import { EXIT } from '../protocol/exit-codes.js';
import type { LauncherKind } from '../protocol/names.js';
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';

export interface WorkerStartOptions {
  controlUrl: string;
  token: string;
  workerId: string;
  spawned: boolean;
  /** The address its data server binds. */
  host: string;
  /** The address peers reach it at, when not `host` (binding 0.0.0.0, say). */
  advertise?: string | null;
  /** A worker a launcher started: who gave it its rank, and the world size it gave. */
  launcher?: { kind: LauncherKind; rank: number | null };
  worldSize?: number | null;
  /** How long to keep trying to reach a coordinator that is not up yet (a launcher starts everyone at once). 0: one try. */
  connectTimeoutMs?: number;
}

/**
 * Freeze this process for `ms` (null: for good, killed after `killAfterMs`) from a small shell that
 * outlives the stop: SIGSTOP now, SIGCONT (or SIGKILL) later. So hang and pause work on a worker
 * no coordinator of ours is the parent of (one that srun, mpirun or a kubelet started).
 */
function freezeSelf(ms: number | null, killAfterMs: number): void {
  const secs = ((ms ?? killAfterMs) / 1000).toFixed(3);
  const then = ms === null ? 'KILL' : 'CONT';
  const sh = spawn('/bin/sh', ['-c', `kill -STOP ${process.pid}; sleep ${secs}; kill -${then} ${process.pid}`], { detached: true, stdio: 'ignore' });
  sh.unref();
}

/** Largest frame payload a worker accepts; data frames are at most one chunk. */
const MAX_FRAME_PAYLOAD = 256 << 20;
const PARENT_CHECK_MS = 250;
const CONNECT_RETRY_MS = 500;

export function startWorkerProcess(o: WorkerStartOptions): void {
  const log = (line: string) => process.stderr.write(`[${o.workerId}] ${line}\n`);
  if (!o.controlUrl || !o.token) {
    log('missing coordinator URL or token (RINGSWARM_CONTROL_URL, RINGSWARM_TOKEN)');
    process.exit(EXIT.usage);
  }
  const parent = process.ppid;
  const exit = (code: number) => {
    // Give the close frames a moment to leave, but never hang on them (and if the loop empties
    // first, the process still ends with this code).
    process.exitCode = code;
    setTimeout(() => process.exit(code), 50).unref();
  };
  // A spawned worker whose coordinator vanished without closing its socket (still frozen, say) is
  // reparented: exit then too.
  if (o.spawned) {
    setInterval(() => {
      if (process.ppid !== parent) {
        log('coordinator process is gone; exiting');
        process.exit(EXIT.coordinatorLost);
      }
    }, PARENT_CHECK_MS).unref();
  }
  process.on('SIGTERM', () => process.exit(EXIT.sigterm));
  process.on('uncaughtException', (e) => {
    log(`uncaught: ${e.stack ?? e.message}`);
    process.exit(EXIT.internal);
  });

  const transport = new WsTransport({ host: o.host, advertise: o.advertise ?? undefined, token: o.token, maxPayload: MAX_FRAME_PAYLOAD, log, pool: new FramePool() });
  const connectUntil = Date.now() + (o.connectTimeoutMs ?? 0);
  void transport.listen().then(
    function dial(): void {
      let opened = false;
      connectControl<CoordinatorMessage, WorkerMessage>(o.controlUrl, CoordinatorMessage, log, {
        error: (e) => {
          if (!opened && Date.now() < connectUntil) {
            setTimeout(dial, CONNECT_RETRY_MS);
            return;
          }
          log(`${opened ? 'lost the coordinator' : 'cannot reach coordinator'} at ${o.controlUrl}: ${e.message}`);
          process.exit(EXIT.coordinatorLost);
        },
        open: (control) => {
          opened = true;
          const id = { workerId: o.workerId, pid: process.pid, token: o.token, spawned: o.spawned, host: hostname(), launcher: o.launcher, worldSize: o.worldSize };
          // One set of slot files per folder: the worker's own stay open across epochs.
          const slots = new Map<string, ReturnType<typeof fileSlots>>();
          const worker = new Worker(control, transport, id, {
            clock: realClock(),
            rssMB: () => process.memoryUsage.rss() / 2 ** 20,
            pssMB: selfPssMB,
            cpuWaitMs: cpuWaitReader() ?? undefined,
            cpuTimes: cpuTimesReader() ?? undefined,
            log,
            strike: (how) => {
              if ('signal' in how) process.kill(process.pid, how.signal);
              else if ('freeze' in how) freezeSelf(how.freeze, how.killAfterMs);
              // Let the fault report leave first.
              else setImmediate(() => process.exit(how.exit));
            },
            disk: checkpointDisk,
            sharedSlots: (dir) => {
              let s = slots.get(dir);
              if (!s) slots.set(dir, (s = fileSlots(dir)));
              return s;
            },
          });
          void worker.exited.then(exit);
        },
      });
    },
    (e: Error) => {
      log(`cannot start data server: ${e.message}`);
      process.exit(EXIT.failed);
    },
  );
}
