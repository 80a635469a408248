// Scale sweep (issue 5): one short run per worker count, 8 -> 256 workers x 40 cards (up to 10,240
// cards), 64 KiB per card. Per row: startup, memory (the report's figures, and the peak PSS/RSS of
// the whole process tree sampled from /proc while it runs), step time p50, busbw. Invariants: every
// run ok with 0 wrong elements and the exact digest (computed here, in closed form, from the same
// pure code the workers use), no worker process left behind, peak total memory under 16 GiB,
// startup <= 30 s at 256 workers. Bounded in time (--time-limit-s), loopback only; exits 1 when an
// invariant breaks. Each run is the typed API's `run` in a child process (scripts/api-child.ts, via
// run-report.ts), the root of the process tree sampled. On a terminal, a progress line on stderr
// (runs done, time elapsed, time left); Ctrl-C stops the run under way and prints the table so far.
//
//   node dist/scripts/scale-sweep.js [--workers 8,16,32,64,128,256] [--cards 40] [--size 64KiB] [--steps 3]
import { Command } from 'commander';
import { parseSize } from '../src/protocol/units.js';
import { isInterrupted, startJob, stopOnSigint } from './run-report.js';
import { ScriptProgress } from './script-progress.js';
import { childrenOf, expectedDigest, leftovers, pssOf, rssOf } from './stress-common.js';

const GiB = 2 ** 30;
const MEMORY_LIMIT_GIB = 16;
const STARTUP_LIMIT_MS = 30_000;
const STARTUP_TARGET_WORKERS = 256;

/** The pid and every descendant of it. */
function processTree(root: number): number[] {
  const seen: number[] = [];
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop()!;
    const children = childrenOf(pid);
    if (!children) continue; // gone
    seen.push(pid);
    todo.push(...children);
  }
  return seen;
}

const mb = (bytes: number) => Math.round(bytes / 2 ** 20);

async function main(): Promise<void> {
  const o = new Command('scale-sweep')
    .option('--workers <list>', 'worker counts, comma-separated', '8,16,32,64,128,256')
    .option('--cards <n>', 'cards per worker', '40')
    .option('--size <bytes>', 'bytes per card', '64KiB')
    .option('--steps <n>', 'steps per run', '3')
    .option('--seed <n>', 'seed of the inputs', '1')
    .option('--sample-ms <ms>', 'how often to sample /proc', '500')
    .option('--time-limit-s <s>', 'bound on the whole sweep; a run still going then is interrupted (and fails)', '1500')
    .option('--no-reference', 'skip the closed-form digest check')
    .parse()
    .opts();
  const counts = String(o.workers)
    .split(',')
    .map((s) => Number(s.trim()));
  if (counts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--workers: expected a list of positive integers, got ${o.workers}`);
  const cards = Number(o.cards);
  const bytesPerCard = parseSize(o.size);
  const steps = Number(o.steps);
  const seed = Number(o.seed);
  const deadline = Date.now() + Number(o.timeLimitS) * 1000;
  const violations: string[] = [];
  const targets: [string, boolean][] = [];
  const progress = new ScriptProgress('scale-sweep', counts.length, { deadline });
  const log = (line = '') => progress.log(line);
  stopOnSigint((sig) => progress.warn(`scale-sweep: ${sig}, stopping the run under way`));
  console.log(`scale-sweep: workers ${counts.join(', ')} x ${cards} cards, ${o.size} per card, ${steps} steps, seed ${seed}; bound ${o.timeLimitS} s`);
  console.log('');
  const head = ['workers', 'cards', 'startup ms', 'coord RSS', 'wkr RSS max', 'wkr PSS tot', 'tree PSS pk', 'tree RSS pk', 'procs pk', 'step p50 ms', 'busbw GB/s', 'wall ms', 'result'];
  console.log(head.join('  '));
  const widths = head.map((h) => h.length);
  const row = (cells: (string | number)[]) => log(cells.map((c, i) => String(c).padStart(widths[i]!)).join('  '));
  for (const W of counts) {
    if (isInterrupted()) break;
    const remaining = deadline - Date.now();
    if (remaining < 5_000) {
      violations.push(`${W} workers: not run, the sweep's time bound (${o.timeLimitS} s) ran out`);
      row([W, W * cards, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', 'SKIPPED']);
      progress.advance(1);
      continue;
    }
    progress.running(`${W} workers`);
    // With its pid, to sample /proc. SIGINT at the bound, SIGKILL 20 s later.
    const run = startJob('run', { workers: W, cardsPerWorker: cards, size: o.size, steps, seed, readyTimeoutMs: Math.min(remaining, 600_000) }, { timeoutMs: remaining, killAfterMs: 20_000, stderrChars: 2000 });
    let peakPss = 0;
    let peakRss = 0;
    let peakProcs = 0;
    let samples = 0;
    let pssSamples = 0;
    let pssMs = 0;
    let nextPss = 0;
    const sample = () => {
      const tree = processTree(run.pid);
      let rss = 0;
      for (const pid of tree) rss += rssOf(pid) ?? 0;
      peakRss = Math.max(peakRss, rss);
      peakProcs = Math.max(peakProcs, tree.length);
      samples++;
      // PSS at most 10% of the time: each sample of it takes about 10 ms a process.
      const t = performance.now();
      if (t < nextPss) return;
      let pss = 0;
      for (const pid of tree) pss += pssOf(pid) ?? 0;
      const took = performance.now() - t;
      peakPss = Math.max(peakPss, pss);
      pssSamples++;
      pssMs += took;
      nextPss = performance.now() + 9 * took;
    };
    const timer = setInterval(sample, Number(o.sampleMs));
    const { report: r, timedOut, error, stderrTail } = await run.done;
    clearInterval(timer);
    progress.advance(1, '');
    const problems: string[] = [];
    if (isInterrupted() && !timedOut && (!r || r.interrupted)) {
      if (r) await leftovers(r.controlUrl, 5_000);
      row([W, W * cards, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', 'INTERRUPTED']);
      break;
    }
    if (!r) {
      problems.push(`no report${timedOut ? ' (time bound reached)' : ''}: ${error ? error.message : stderrTail}`);
    } else {
      if (!r.ok) problems.push(`not ok: ${r.error ?? '?'}`);
      if (r.wrong !== 0) problems.push(`${r.wrong} wrong elements`);
      if (r.stepsCompleted !== steps) problems.push(`${r.stepsCompleted}/${steps} steps`);
      if (r.stateDigest === null) problems.push('no digest');
      const left = await leftovers(r.controlUrl, 5_000);
      if (left.length) problems.push(`${left.length} worker processes left behind (pids ${left.slice(0, 10).join(', ')}; killed now)`);
    }
    // Computed after the run, so that it does not take CPU from it.
    if (r?.stateDigest && o.reference) {
      const want = expectedDigest({ workers: W, cards, bytesPerCard, steps, seed });
      if (r.stateDigest !== want) problems.push(`digest ${r.stateDigest} is not the exact ${want}`);
    }
    const runOk = problems.length === 0;
    // The workers' own last PSS figures (they read smaps_rollup every step) may catch a peak the
    // slower sampling here missed; RSS, sampled often, bounds PSS from above.
    if (r?.memory.workerPssMBTotal != null) peakPss = Math.max(peakPss, (r.memory.workerPssMBTotal + (r.memory.coordinatorPssMB ?? 0)) * 2 ** 20);
    const memoryOk = samples > 0 && peakPss < MEMORY_LIMIT_GIB * GiB;
    if (!memoryOk) problems.push(samples ? `peak PSS of the process tree ${(peakPss / GiB).toFixed(2)} GiB >= ${MEMORY_LIMIT_GIB} GiB` : 'no /proc sample taken');
    row([
      W,
      W * cards,
      r?.startupMs ?? '-',
      r ? `${r.memory.coordinatorRssMB} MB` : '-',
      r ? `${r.memory.workerRssMBMax} MB` : '-',
      r?.memory.workerPssMBTotal != null ? `${r.memory.workerPssMBTotal} MB` : '-',
      `${mb(peakPss)} MB`,
      `${mb(peakRss)} MB`,
      peakProcs,
      r ? r.stepMs.p50.toFixed(1) : '-',
      r ? r.busbwGBps.toPrecision(3) : '-',
      r?.wallMs ?? '-',
      problems.length ? 'FAIL' : 'ok',
    ]);
    for (const p of problems) log(`    ${W} workers: ${p}`);
    log(`    (${samples} RSS samples of the tree; ${pssSamples} PSS samples, ${pssSamples ? (pssMs / pssSamples).toFixed(0) : '-'} ms each)`);
    violations.push(...problems.map((p) => `${W} workers: ${p}`));
    targets.push([`${W} workers: run ok, 0 wrong, exact digest${o.reference ? '' : ' (digest not checked: --no-reference)'}, no process left`, runOk]);
    targets.push([`${W} workers: peak memory of the process tree < ${MEMORY_LIMIT_GIB} GiB (PSS ${(peakPss / GiB).toFixed(2)} GiB, RSS ${(peakRss / GiB).toFixed(2)} GiB)`, memoryOk]);
    if (W === STARTUP_TARGET_WORKERS) {
      const ms = r?.startupMs ?? Infinity;
      const pass = ms <= STARTUP_LIMIT_MS && Boolean(r?.ok);
      targets.push([`startup <= ${STARTUP_LIMIT_MS / 1000} s at ${W} workers (${r ? `${ms} ms` : 'no report'})`, pass]);
      if (!pass) violations.push(`${W} workers: startup ${ms} ms > ${STARTUP_LIMIT_MS} ms`);
    }
  }
  progress.end();
  if (isInterrupted()) console.log('\ninterrupted: the rows above are the runs that finished');
  console.log('\ntargets');
  for (const [what, pass] of targets) console.log(`  ${pass ? 'PASS' : 'FAIL'}  ${what}`);
  if (!counts.includes(STARTUP_TARGET_WORKERS)) console.log(`  (startup target is for ${STARTUP_TARGET_WORKERS} workers: not in this sweep)`);
  if (violations.length) {
    console.log(`\n${violations.length} invariant(s) broken:`);
    for (const v of violations) console.log(`  ${v}`);
  }
  process.exitCode = violations.length ? 1 : isInterrupted() ? 130 : 0;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 2;
});
