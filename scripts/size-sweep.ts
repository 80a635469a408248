// Size sweep per all-reduce algorithm (issue 5): `ringswarm bench --algo ring,rd` for each worker
// count, interleaved ring / recursive doubling on the same swarm, printing per size the time of each,
// the faster one, the alpha-beta model's prediction of each, and per worker count the crossover size
// measured and predicted (what --algo auto goes by). Bounded (--time-limit-s); exits 1 on any wrong
// element or failed bench.
//
//   node dist/scripts/size-sweep.js [--workers 4,8,16,32] [--min 8] [--max 4MiB] [--factor 4] [--iters 10]
import { Command } from 'commander';
import type { BenchReport, BenchRow } from '../src/coordinator/config.js';
import { formatBytes } from '../src/protocol/units.js';
import { startCli } from './run-report.js';

type Bench = Pick<BenchReport, 'rows' | 'avgBusbwGBps' | 'crossover'>;

const bench = (args: string[], timeoutMs: number) => startCli<Bench>('bench', args, { timeoutMs, stderrChars: 4000 }).done;

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
  const deadline = Date.now() + Number(o.timeLimitS) * 1000;
  let failed = 0;
  const summary: string[] = [];
  for (const w of String(o.workers).split(',').map(Number)) {
    const left = deadline - Date.now();
    if (left <= 0) {
      console.log(`time limit reached before ${w} workers`);
      break;
    }
    const args = ['-w', String(w), '-b', o.min, '-e', o.max, '-f', o.factor, '-n', o.iters, '--warmup', '2', '--algo', 'ring,rd'];
    const r = await bench(args, left);
    if (!r.report || r.code !== 0) {
      failed++;
      console.log(`${w} workers: bench failed (exit ${r.code}):\n${r.stderrTail}`);
      continue;
    }
    const by = (algo: string) => new Map(r.report!.rows.filter((x) => x.algo === algo).map((x) => [x.bytes, x] as const));
    const ring = by('ring');
    const rd = by('rd');
    console.log(`\n${w} workers: time per all-reduce, us (model in brackets)`);
    console.log(`${'size'.padStart(10)}  ${'ring'.padStart(18)}  ${'rd'.padStart(18)}  faster`);
    const cell = (x: BenchRow | undefined) => (x ? `${x.timeUs.toFixed(0)} (${(x.predictedUs ?? 0).toFixed(0)})`.padStart(18) : '-'.padStart(18));
    for (const [bytes, a] of ring) {
      const b = rd.get(bytes);
      console.log(`${formatBytes(bytes).padStart(10)}  ${cell(a)}  ${cell(b)}  ${b ? (b.timeUs < a.timeUs ? 'rd' : 'ring') : '-'}`);
    }
    const wrong = r.report.rows.reduce((n, x) => n + x.wrong, 0);
    if (wrong > 0) {
      failed++;
      console.log(`  ${wrong} wrong elements: FAIL`);
    }
    const c = r.report.crossover;
    const fmt = (x: number | null | undefined, none: string) => (x === null || x === undefined ? none : formatBytes(x));
    const line = `${String(w).padStart(4)} workers: crossover measured ${fmt(c?.measuredBytes, 'above the largest size')}, predicted ${fmt(c?.predictedBytes, 'none (ring at every size)')}`;
    console.log(line);
    summary.push(line);
  }
  console.log(`\nrd -> ring crossover (per card; auto uses the predicted one):\n${summary.join('\n')}`);
  process.exitCode = failed ? 1 : 0;
}

void main();
