// Straggler accuracy on real processes: M seeded trials, each with one injected straggler (a rank
// or a link, severity S drawn uniformly from 1.5 to 5) on 16 workers, plus clean runs with jitter.
// Prints recall within 5 steps, node/link told apart, precision, false positives per clean run,
// and the median steps to detection. Bounded: every run has a timeout. Exit non-zero only if a run
// fails.
//
// What severity S means:
// - a node: its compute takes S times as long (`slow:factor=S`).
// - a link: it carries its bytes S times slower than a link of the clean ring does. In a ring
//   all-reduce every link carries the same bytes (2(W-1) segments of 1/W of the buffer) in the
//   time of the whole all-reduce, A, so a clean link's rate is bytes / A; the slow link is capped
//   at bytes / (S * A) (`slow-link:bandwidth=...`). A ring goes at the pace of its slowest link,
//   so the all-reduce takes about S times as long. A is measured here first, with `ringswarm
//   bench` on the same workers, cards and size (the all-reduce alone, no compute skew in it).
//   This machine's speed drifts (DESIGN.md: compare only within one run), so a link trial run at
//   a busier moment than the bench is milder than S. Each trial line shows the step time over
//   that run's own clean baseline, as the detector measured it; the summary gives its median
//   over S for the link trials (the step includes compute, which the link does not slow, so it
//   is under 1).
//
// Each run (and the bench) is the typed API's in a child process (scripts/api-child.ts, via
// run-report.ts). On a terminal, a progress line on stderr (runs done, time elapsed, time left);
// Ctrl-C stops the run under way and prints the figures of the runs that finished.
//
//   node dist/scripts/straggler-accuracy.js [--trials 20] [--clean 20] [--workers 16] [--steps 30] [--seed 1]
import { Command } from 'commander';
import type { RunOptions, RunReport } from '../src/api/index.js';
import { benchReport, isInterrupted, runReport, stopOnSigint } from './run-report.js';
import { ScriptProgress } from './script-progress.js';
import { seededRandom } from '../src/collective/random.js';
import { parseSize } from '../src/protocol/units.js';

type Found = RunReport['stragglers'][number];

const run = (options: RunOptions, timeoutMs: number) => runReport(options, timeoutMs);

/** Mean time of one all-reduce of `size` per card, alone (the API's bench), in ms. */
async function benchAllreduceMs(workers: number, cards: number, size: string): Promise<number> {
  const r = await benchReport({ workers, cardsPerWorker: cards, minBytes: size, maxBytes: size, iters: 20, warmup: 5, algos: ['ring'] }, 300_000);
  if (!r.rows[0]) throw new Error(`bench gave no row${r.error ? `: ${r.error}` : ''}`);
  return r.rows[0].timeUs / 1000;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[(s.length - 1) >> 1] : NaN;
};

async function main(): Promise<void> {
  const o = new Command('straggler-accuracy')
    .option('--trials <n>', 'trials with one straggler', '20')
    .option('--clean <n>', 'clean runs with jitter', '20')
    .option('--workers <n>', 'workers', '16')
    .option('--steps <n>', 'steps per run', '30')
    .option('--onset <step>', 'step the straggler starts at', '8')
    .option('--compute-ms <ms>', 'emulated compute per step', '20')
    .option('--jitter-ms <ms>', 'jitter of the clean runs', '10')
    .option('--seed <n>', 'seed of the trial draws', '1')
    .parse()
    .opts();
  const W = Number(o.workers);
  for (const [flag, v, lo] of [['--trials', o.trials, 0], ['--clean', o.clean, 0], ['--workers', o.workers, 2], ['--steps', o.steps, 1], ['--onset', o.onset, 0], ['--seed', o.seed, 0]] as const) {
    if (!Number.isInteger(Number(v)) || Number(v) < lo) throw new Error(`${flag} ${v}: expected an integer >= ${lo}`);
  }
  const onset = Number(o.onset);
  const seed = Number(o.seed);
  const rand = seededRandom(seed);
  const cards = 2;
  const size = '256KiB';
  // The ring: links are scored per ring link (auto may pick recursive doubling, under which only nodes are).
  const base: RunOptions = { workers: W, cardsPerWorker: cards, size, steps: Number(o.steps), computeMs: Number(o.computeMs), algo: 'ring' };
  const progress = new ScriptProgress('straggler-accuracy', Number(o.trials) + Number(o.clean));
  const log = (line = '') => progress.log(line);
  stopOnSigint((sig) => progress.warn(`straggler-accuracy: ${sig}, stopping the run under way; figures of the finished runs follow`));
  // What each rank sends its successor in one all-reduce: 2(W-1) segments, each with its header.
  const linkBytes = 2 * (W - 1) * (parseSize(size) / W + 40);
  progress.running('bench');
  const cleanAllreduceMs = await benchAllreduceMs(W, cards, size);
  log(`clean all-reduce (bench): ${cleanAllreduceMs.toFixed(1)} ms; a clean link carries ${linkBytes} bytes in it`);
  let hits = 0;
  let rightKind = 0;
  let reported = 0;
  let correct = 0;
  let failed = 0;
  const delays: number[] = [];
  const linkTrials: { severity: number; slowdown: number }[] = [];
  let trials = 0;
  for (let i = 0; i < Number(o.trials) && !isInterrupted(); i++) {
    const node = rand() < 0.5;
    const who = Math.floor(rand() * W);
    const severity = 1.5 + rand() * 3.5;
    const bandwidth = Math.round(linkBytes / ((severity * cleanAllreduceMs) / 1000));
    const spec = node ? `slow:rank=${who}:factor=${severity.toFixed(2)}:step=${onset}` : `slow-link:from=${who}:step=${onset}:bandwidth=${bandwidth}`;
    // Trial runs' seeds follow the draw seed, so another --seed is another set of runs too.
    progress.running(`trial ${i + 1}`);
    const r = await run({ ...base, seed: seed * 1000 + i, inject: [spec] }, 300_000);
    if (r.interrupted) break;
    trials++;
    progress.advance();
    if (!r.ok) failed++;
    const match = (s: Found) => (node ? s.kind === 'node' && s.rank === who : s.kind === 'link' && s.link?.[0] === who);
    const near = (s: Found) => (node ? s.rank === who || s.link?.[0] === who : s.link?.[0] === who || s.rank === who || s.rank === (who + 1) % W);
    const hit = r.stragglers.find((s) => match(s) && s.detectedAtStep - onset <= 5);
    reported += r.stragglers.length;
    correct += r.stragglers.filter(match).length;
    if (hit) {
      hits++;
      delays.push(hit.detectedAtStep - onset);
      if (!node && hit.slowdown) linkTrials.push({ severity, slowdown: hit.slowdown });
    }
    if (r.stragglers.some(near) && r.stragglers.filter(near).every(match)) rightKind++;
    const found = r.stragglers.map((s) => (s.kind === 'node' ? `node ${s.rank}` : `link ${s.link?.join('->')}`) + `@${s.detectedAtStep}` + (s.slowdown ? ` (step ${s.slowdown}x)` : ''));
    log(`  trial ${i + 1}: ${node ? '' : `S=${severity.toFixed(2)} `}${spec} -> ${found.join(', ') || 'nothing'}`);
  }
  let falsePositives = 0;
  let cleanRuns = 0;
  for (let i = 0; i < Number(o.clean) && !isInterrupted(); i++) {
    progress.running(`clean ${i + 1}`);
    const r = await run({ ...base, seed: seed * 1000 + 500 + i, inject: [`jitter:maxMs=${o.jitterMs}`] }, 300_000);
    if (r.interrupted) break;
    cleanRuns++;
    progress.advance();
    if (!r.ok) failed++;
    falsePositives += r.stragglers.length;
    if (r.stragglers.length) log(`  clean ${i + 1}: false positives ${r.stragglers.map((s) => JSON.stringify(s)).join(' ')}`);
  }
  progress.end();
  delays.sort((a, b) => a - b);
  console.log('');
  if (isInterrupted()) console.log(`interrupted: ${trials}/${o.trials} trials and ${cleanRuns}/${o.clean} clean runs done`);
  console.log(`seed                       ${seed}`);
  console.log(`recall within 5 steps      ${((hits / trials) * 100).toFixed(1)}% (${hits}/${trials})`);
  console.log(`node and link told apart   ${((rightKind / trials) * 100).toFixed(1)}%`);
  console.log(`precision                  ${reported ? ((correct / reported) * 100).toFixed(1) : 'n/a'}% (${correct}/${reported} reports)`);
  console.log(`false positives per clean  ${(falsePositives / cleanRuns).toFixed(2)} (${falsePositives} in ${cleanRuns} clean runs with jitter ${o.jitterMs} ms)`);
  console.log(`median steps to detection  ${delays.length ? delays[Math.floor((delays.length - 1) / 2)] : 'n/a'}`);
  if (linkTrials.length) {
    const perS = median(linkTrials.map((t) => t.slowdown / t.severity));
    console.log(`link trials' step time     ${perS.toFixed(2)} x S its run's clean baseline (median of ${linkTrials.length} found links)`);
  }
  process.exitCode = failed > 0 ? 1 : isInterrupted() ? 130 : 0;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 2;
});
