// Size sweep per all-reduce algorithm (issue 5): `ringswarm bench --algo ring,rd` for each worker
// count, interleaved ring / recursive doubling on the same swarm, printing per size the time of each,
// the faster one, the alpha-beta model's prediction of each, and per worker count the crossover size
// measured and predicted (what --algo auto goes by). Bounded (--time-limit-s); exits 1 on any wrong
// element or failed bench. Each bench is the typed API's `bench` in a child process
// (scripts/api-child.ts, via run-report.ts). On a terminal, a progress line on stderr (worker counts
// done, time elapsed, time left); Ctrl-C ends the bench under way (bench takes no AbortSignal, so
// it gives no partial report) and prints the summary so far.
//
//   node dist/scripts/size-sweep.js [--workers 4,8,16,32] [--min 8] [--max 4MiB] [--factor 4] [--iters 10]
import { Command } from 'commander';
import { benchConfig, RingswarmUsageError, type BenchOptions } from '../src/api/index.js';
import type { BenchRow } from '../src/coordinator/config.js';
import { formatBytes } from '../src/protocol/units.js';
import { isInterrupted, startJob, stopOnSigint } from './run-report.js';
import { ScriptProgress } from './script-progress.js';

const bench = (options: BenchOptions, timeoutMs: number) => startJob('bench', options, { timeoutMs, stderrChars: 4000 }).done;

/** The flags, checked before any bench starts; a usage error names the flag. */
function sweepJobs(o: { workers: string; min: string; max: string; factor: string; iters: string }): BenchOptions[] {
  const list = String(o.workers).split(',').map((x) => x.trim());
  const workers = list.map(Number);
  if (!list.length || workers.some((n, i) => list[i] === '' || !Number.isInteger(n) || n < 1)) throw new RingswarmUsageError(`--workers ${o.workers}: expected a comma-separated list of positive integers`);
  const factor = Number(o.factor);
  if (!Number.isFinite(factor) || factor <= 1) throw new RingswarmUsageError(`--factor ${o.factor}: expected a number above 1`);
  const iters = Number(o.iters);
  if (!Number.isInteger(iters) || iters < 1) throw new RingswarmUsageError(`--iters ${o.iters}: expected an integer >= 1`);
  const jobs = workers.map((w): BenchOptions => ({ workers: w, minBytes: o.min, maxBytes: o.max, stepFactor: factor, iters, warmup: 2, algos: ['ring', 'rd'] }));
  // The sizes with the API's own checks (and messages: --min-bytes, --max-bytes).
  for (const j of jobs) benchConfig(j);
  return jobs;
}

async function main(): Promise<void> {
  const o = new Command('size-sweep')
    .option('--workers <list>', 'worker counts', '4,8,16,32')
    .option('--min <bytes>', 'smallest size per card', '8')
    .option('--max <bytes>', 'largest size per card', '4MiB')
    .option('--factor <n>', 'size step factor', '4')
    .option('--iters <n>', 'timed iterations per size', '10')
    .option('--time-limit-s <s>', 'stop after this long', '900')
    .parse()
    .opts();
  const jobs = sweepJobs(o as { workers: string; min: string; max: string; factor: string; iters: string });
  const deadline = Date.now() + Number(o.timeLimitS) * 1000;
  const progress = new ScriptProgress('size-sweep', jobs.length, { unit: 'worker counts', deadline });
  const log = (line = '') => progress.log(line);
  stopOnSigint((sig) => progress.warn(`size-sweep: ${sig}, ending the bench under way`));
  let failed = 0;
  const summary: string[] = [];
  for (const job of jobs) {
    const w = job.workers!;
    if (isInterrupted()) break;
    const left = deadline - Date.now();
    if (left <= 0) {
      log(`time limit reached before ${w} workers`);
      break;
    }
    progress.running(`${w} workers`);
    const r = await bench(job, left);
    progress.advance(1, '');
    if (isInterrupted() && !r.report) {
      log(`${w} workers: interrupted`);
      break;
    }
    if (!r.report || r.code !== 0) {
      failed++;
      log(`${w} workers: bench failed (exit ${r.code})${r.error ? `: ${r.error.message}` : ''}:\n${r.stderrTail}`);
      continue;
    }
    const by = (algo: string) => new Map(r.report!.rows.filter((x) => x.algo === algo).map((x) => [x.bytes, x] as const));
    const ring = by('ring');
    const rd = by('rd');
    log(`\n${w} workers: time per all-reduce, us (model in brackets)`);
    log(`${'size'.padStart(10)}  ${'ring'.padStart(18)}  ${'rd'.padStart(18)}  faster`);
    const cell = (x: BenchRow | undefined) => (x ? `${x.timeUs.toFixed(0)} (${(x.predictedUs ?? 0).toFixed(0)})`.padStart(18) : '-'.padStart(18));
    for (const [bytes, a] of ring) {
      const b = rd.get(bytes);
      log(`${formatBytes(bytes).padStart(10)}  ${cell(a)}  ${cell(b)}  ${b ? (b.timeUs < a.timeUs ? 'rd' : 'ring') : '-'}`);
    }
    const wrong = r.report.rows.reduce((n, x) => n + x.wrong, 0);
    if (wrong > 0) {
      failed++;
      log(`  ${wrong} wrong elements: FAIL`);
    }
    const c = r.report.crossover;
    const fmt = (x: number | null | undefined, none: string) => (x === null || x === undefined ? none : formatBytes(x));
    const line = `${String(w).padStart(4)} workers: crossover measured ${fmt(c?.measuredBytes, 'above the largest size')}, predicted ${fmt(c?.predictedBytes, 'none (ring at every size)')}`;
    log(line);
    summary.push(line);
  }
  progress.end();
  console.log(`\nrd -> ring crossover (per card; auto uses the predicted one):\n${summary.join('\n')}`);
  process.exitCode = failed ? 1 : isInterrupted() ? 130 : 0;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 2;
});
