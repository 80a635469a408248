// Size sweep per all-reduce algorithm (issue 5): `ringswarm bench --algo ring,rd,tree` for each
// worker count, one algorithm after the other on the same swarm, printing per size the time of each,
// the fastest, the alpha-beta model's prediction of each and its pick (what --algo auto goes by), and
// per worker count the rd -> ring crossover size measured and predicted. Bounded (--time-limit-s); exits 1 on any wrong
// element or failed bench. Each bench is the typed API's `bench` in a child process
// (scripts/api-child.ts, via run-report.ts). On a terminal, a progress line on stderr (worker counts
// done, time elapsed, time left); Ctrl-C ends the bench under way (bench takes no AbortSignal, so
// it gives no partial report) and prints the summary so far.
//
//   node dist/scripts/size-sweep.js [--workers 4,8,16,32] [--min 8] [--max 4MiB] [--factor 4] [--iters 10]
import { Command } from 'commander';
import { benchConfig, RingswarmUsageError, type BenchOptions } from '../src/api/index.js';
import { pickAlgo } from '../src/collective/model.js';
import { ALLREDUCE_ALGOS } from '../src/collective/types.js';
import { RUN_DEFAULTS } from '../src/coordinator/config.js';
import { fabricModel } from '../src/coordinator/run.js';
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
  const jobs = workers.map((w): BenchOptions => ({ workers: w, minBytes: o.min, maxBytes: o.max, stepFactor: factor, iters, warmup: 2, algos: [...ALLREDUCE_ALGOS] }));
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
    const by = new Map(ALLREDUCE_ALGOS.map((algo) => [algo, new Map(r.report!.rows.filter((x) => x.algo === algo).map((x) => [x.bytes, x] as const))]));
    log(`\n${w} workers: time per all-reduce, us (model in brackets)`);
    log(`${'size'.padStart(10)}  ${ALLREDUCE_ALGOS.map((a) => a.padStart(18)).join('  ')}  fastest  auto`);
    const cell = (x: BenchRow | undefined) => (x ? `${x.timeUs.toFixed(0)} (${(x.predictedUs ?? 0).toFixed(0)})`.padStart(18) : '-'.padStart(18));
    // What `run --algo auto` would take for this size (1 card a worker, no emulated link).
    const fabric = fabricModel(RUN_DEFAULTS.link);
    for (const bytes of by.get('ring')!.keys()) {
      const rows = ALLREDUCE_ALGOS.map((a) => by.get(a)!.get(bytes));
      const fastest = rows.reduce<BenchRow | undefined>((f, x) => (x && (!f || x.timeUs < f.timeUs) ? x : f), undefined);
      log(`${formatBytes(bytes).padStart(10)}  ${rows.map(cell).join('  ')}  ${(fastest?.algo ?? '-').padEnd(7)}  ${pickAlgo(w, 1, bytes, fabric)}`);
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
  console.log(`\nrd -> ring crossover (per card; the model's, when auto weighs those two):\n${summary.join('\n')}`);
  process.exitCode = failed ? 1 : isInterrupted() ? 130 : 0;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 2;
});
