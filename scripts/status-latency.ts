// How long `ringswarm status` takes to answer on a big job: a coordinator with --workers N runs in a
// child process (scripts/api-child.ts), and this process asks it for its status again and again
// while it trains (GET /v1/status, what `ringswarm status` sends), and once through the CLI itself.
// Prints the latency percentiles and the size of the answer.
//
//   node dist/scripts/status-latency.js [--workers 256] [--cards 1] [--size 4KiB] [--samples 30] [--every-ms 200]
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fetchStatus } from '../src/runtime/operator-client.js';
import { startJob, stopOnSigint } from './run-report.js';
import { ScriptProgress } from './script-progress.js';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '256' },
    cards: { type: 'string', default: '1' },
    size: { type: 'string', default: '4KiB' },
    samples: { type: 'string', default: '30' },
    'every-ms': { type: 'string', default: '200' },
  },
});

function int(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`error: --${flag} ${text}: expected an integer >= ${min}\n`);
    process.exit(2);
  }
  return n;
}

const workers = int('workers', values.workers!, 1);
const cards = int('cards', values.cards!, 1);
const samples = int('samples', values.samples!, 1);
const everyMs = int('every-ms', values['every-ms']!, 0);

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function main(): Promise<void> {
  const port = await freePort();
  const token = 'status-latency';
  const url = `ws://127.0.0.1:${port}`;
  let ready = false;
  const job = startJob(
    'run',
    // Enough steps to outlast the samples; the run is stopped once they are taken.
    { workers, cardsPerWorker: cards, size: values.size!, steps: 100_000, computeMs: 20, checkpointEvery: 0, port, token, readyTimeoutMs: 600_000 },
    { timeoutMs: 30 * 60_000, killAfterMs: 20_000, stderrChars: 4000, onEvent: (e) => e.type === 'ready' && (ready = true) },
  );
  stopOnSigint(() => job.stop());
  // On a terminal: requests done of how many, time left (256 workers take a minute or more to be ready).
  const progress = new ScriptProgress('status-latency', samples, { unit: 'requests' });
  const ms: number[] = [];
  let bytes = 0;
  let ranks = 0;
  let cliMs = 0;
  try {
    progress.warn(`status-latency: ${workers} workers x ${cards} cards; waiting for the job to be ready`);
    progress.running(`waiting for ${workers} workers to be ready`);
    const t0 = Date.now();
    while (!ready) {
      await new Promise((r) => setTimeout(r, 200));
      if (Date.now() - t0 > 600_000) throw new Error('the job was not ready within 600 s');
    }
    progress.warn(`ready in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${samples} status requests, one every ${everyMs} ms`);
    progress.running('asking');
    for (let i = 0; i < samples; i++) {
      const t = performance.now();
      const s = await fetchStatus(url, token, 30_000);
      ms.push(performance.now() - t);
      bytes = Buffer.byteLength(JSON.stringify(s));
      ranks = s.ranks.length;
      progress.advance();
      await new Promise((r) => setTimeout(r, everyMs));
    }
    // The CLI as a user runs it: a new process each time (start-up included).
    const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
    const t = performance.now();
    await promisify(execFile)(process.execPath, [cli, 'status', '--url', url, '--token', token, '--json'], { maxBuffer: 64 << 20 });
    cliMs = performance.now() - t;
  } finally {
    progress.end();
    // Every worker reaped, also when a request failed.
    job.stop();
    await job.done;
  }
  const f = (x: number) => x.toFixed(1);
  process.stdout.write(
    `status on ${workers} workers (${ranks} ranks, ${(bytes / 1024).toFixed(0)} KiB of JSON), ${samples} requests while training:\n` +
      `  p50 ${f(pct(ms, 50))} ms  p90 ${f(pct(ms, 90))} ms  max ${f(Math.max(...ms))} ms\n` +
      `  \`ringswarm status --json\` as a new process: ${f(cliMs)} ms (node start-up and the CLI's modules included)\n`,
  );
}

main().catch((e) => {
  process.stderr.write(`status-latency: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
