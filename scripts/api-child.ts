// One job of the typed API in its own process, for the stress scripts (isolation, and /proc sampling
// of the coordinator: this process is the coordinator). Not the CLI: the job is API options, the
// result the typed report.
//
//   node dist/scripts/api-child.js run|bench '<options as JSON>' [--events]
//   node dist/scripts/api-child.js run|bench - [--events]          (options as JSON on stdin)
//
// Forked with an IPC channel (child_process.fork, as run-report.ts does), it sends messages:
//   { type: 'log', line }        the job's log lines (what the CLI prints above its progress line)
//   { type: 'event', event }     with --events, each event of a run (ready, step, fault, straggler, epoch)
//   { type: 'report', report }   the RunReport or BenchReport
//   { type: 'error', error: { name, message, code } }   options refused (RingswarmUsageError) or the job threw
// and takes { type: 'stop' } (as SIGINT and SIGTERM): a run stops and still reports (interrupted: true).
// Without an IPC channel: log lines on stderr, the report as JSON on stdout.
// Exit status: 0 ok; 1 not ok (a failed run, wrong elements, a bench error); 2 options refused or
// the job threw; 130/143 a run stopped by SIGINT/SIGTERM (its partial report sent all the same).
import { bench, startRun, type BenchOptions, type RunOptions, type RunReport, type BenchReport } from '../src/api/index.js';

export type ChildMessage =
  | { type: 'log'; line: string }
  | { type: 'event'; event: Record<string, unknown> & { type: string } }
  | { type: 'report'; report: RunReport | BenchReport }
  | { type: 'error'; error: { name: string; message: string; code?: string } };

const ipc = typeof process.send === 'function';

function send(m: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!ipc || !process.connected) return resolve();
    try {
      process.send!(m, undefined, {}, () => resolve());
    } catch {
      resolve(); // the parent is gone: nothing to tell
    }
  });
}

const log = (line: string): void => {
  if (ipc) void send({ type: 'log', line });
  else process.stderr.write(`${line}\n`);
};

async function readStdin(): Promise<string> {
  let s = '';
  for await (const c of process.stdin) s += c;
  return s;
}

async function main(): Promise<number> {
  const [command, json, ...rest] = process.argv.slice(2);
  if (command !== 'run' && command !== 'bench') throw Object.assign(new Error(`api-child: expected run or bench, got ${command ?? 'nothing'}`), { name: 'UsageError' });
  const text = json === undefined || json === '-' ? await readStdin() : json;
  let options: unknown;
  try {
    options = JSON.parse(text);
  } catch (e) {
    throw Object.assign(new Error(`api-child: the options are not JSON: ${(e as Error).message}`), { name: 'UsageError' });
  }
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw Object.assign(new Error('api-child: the options must be a JSON object'), { name: 'UsageError' });
  const events = rest.includes('--events');

  let stoppedBy: 'SIGINT' | 'SIGTERM' | null = null;
  let stop: () => void = () => {};
  const onSignal = (sig: 'SIGINT' | 'SIGTERM') => () => {
    // `on`, not `once`: a Ctrl-C reaches this process from the terminal and from the script's timeout alike.
    if (stoppedBy) return;
    stoppedBy = sig;
    stop();
  };
  process.on('SIGINT', onSignal('SIGINT'));
  process.on('SIGTERM', onSignal('SIGTERM'));
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'stop') onSignal('SIGINT')();
  });

  let report: RunReport | BenchReport;
  let ok: boolean;
  if (command === 'run') {
    const live = startRun(options as RunOptions, { log, progress: () => {} });
    stop = () => live.stop();
    if (stoppedBy) stop();
    if (events) for (const type of ['ready', 'step', 'fault', 'straggler', 'epoch'] as const) live.on(type, (e) => void send({ type: 'event', event: { type, ...e } }));
    const r = await live.done;
    report = r;
    ok = r.ok;
  } else {
    // bench takes no AbortSignal: a signal ends it (no report), as it ends `ringswarm bench`.
    process.removeAllListeners('SIGINT');
    process.removeAllListeners('SIGTERM');
    const r = await bench(options as BenchOptions, { log });
    report = r;
    ok = !r.error && r.rows.every((x) => x.wrong === 0);
  }
  if (ipc) await send({ type: 'report', report });
  else await new Promise<void>((resolve) => process.stdout.write(`${JSON.stringify(report)}\n`, () => resolve()));
  if (stoppedBy) return stoppedBy === 'SIGTERM' ? 143 : 130;
  return ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
    if (ipc && process.connected) process.disconnect();
  },
  async (e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    const code = (err as { code?: unknown }).code;
    if (ipc) await send({ type: 'error', error: { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) } });
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 2;
    if (ipc && process.connected) process.disconnect();
  },
);
