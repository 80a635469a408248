// Starts a worker in this process: data server, control connection, and the guards that make a
// worker exit by itself when its coordinator is gone (no orphans, ever).
import { CoordinatorMessage, type WorkerMessage } from '../protocol/control.js';
import { Worker } from './worker.js';
import { connectControl } from '../runtime/control-client.js';
import { checkpointDisk } from '../runtime/checkpoint-disk.js';
import { FramePool } from '../runtime/frame-pool.js';
import { cpuTimesReader, cpuWaitReader } from '../runtime/cpu-wait.js';
import { selfPssMB } from '../runtime/memory.js';
import { WsTransport } from '../runtime/ws-transport.js';
import { realClock } from '../runtime/clock.js';

export interface WorkerStartOptions {
  controlUrl: string;
  token: string;
  workerId: string;
  spawned: boolean;
  host: string;
}

/** Largest frame payload a worker accepts; data frames are at most one chunk. */
const MAX_FRAME_PAYLOAD = 256 << 20;
const PARENT_CHECK_MS = 250;

export function startWorkerProcess(o: WorkerStartOptions): void {
  const log = (line: string) => process.stderr.write(`[${o.workerId}] ${line}\n`);
  if (!o.controlUrl || !o.token) {
    log('missing coordinator URL or token (RINGSWARM_CONTROL_URL, RINGSWARM_TOKEN)');
    process.exit(2);
  }
  const parent = process.ppid;
  const exit = (code: number) => {
    // Give the close frames a moment to leave, but never hang on them.
    setTimeout(() => process.exit(code), 50).unref();
  };
  // A spawned worker whose coordinator vanished without closing its socket (still frozen, say) is
  // reparented: exit then too.
  if (o.spawned) {
    setInterval(() => {
      if (process.ppid !== parent) {
        log('coordinator process is gone; exiting');
        process.exit(1);
      }
    }, PARENT_CHECK_MS).unref();
  }
  process.on('SIGTERM', () => process.exit(143));
  process.on('uncaughtException', (e) => {
    log(`uncaught: ${e.stack ?? e.message}`);
    process.exit(70);
  });

  const transport = new WsTransport({ host: o.host, token: o.token, maxPayload: MAX_FRAME_PAYLOAD, log, pool: new FramePool() });
  void transport.listen().then(
    () => {
      connectControl<CoordinatorMessage, WorkerMessage>(o.controlUrl, CoordinatorMessage, log, {
        error: (e) => {
          log(`cannot reach coordinator at ${o.controlUrl}: ${e.message}`);
          process.exit(1);
        },
        open: (control) => {
          const worker = new Worker(control, transport, { workerId: o.workerId, pid: process.pid, token: o.token, spawned: o.spawned }, {
            clock: realClock(),
            rssMB: () => process.memoryUsage.rss() / 2 ** 20,
            pssMB: selfPssMB,
            cpuWaitMs: cpuWaitReader() ?? undefined,
            cpuTimes: cpuTimesReader() ?? undefined,
            log,
            strike: (how) => {
              if ('signal' in how) process.kill(process.pid, how.signal);
              // Let the fault report leave first.
              else setImmediate(() => process.exit(how.exit));
            },
            disk: checkpointDisk,
          });
          void worker.exited.then(exit);
        },
      });
    },
    (e: Error) => {
      log(`cannot start data server: ${e.message}`);
      process.exit(1);
    },
  );
}
