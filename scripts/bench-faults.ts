// Fault benchmark for the targets, on 16 workers x 8 cards by default. Each figure comes
// from a real run (the typed API's `run` in a child process, scripts/api-child.ts, its typed report); the fault-free digest of the same seed and flags is
// the reference every faulty run must end with. Prints a table and PASS/FAIL per target; exits
// non-zero only when an invariant breaks (a wrong digest, a failed run), not on a missed target.
// On a terminal, a progress line on stderr (runs done, time elapsed, time left); Ctrl-C stops the
// run under way and ends the benchmark (exit 130) with the lines printed so far.
//
//   node dist/scripts/bench-faults.js [--workers 16] [--cards 8] [--size 1MiB] [--steps 30] [--long-steps 200]
import { Command } from 'commander';
import type { RunOptions, RunReport } from '../src/api/index.js';
import { runReport, stopOnSigint } from './run-report.js';
import { ScriptProgress } from './script-progress.js';

type Report = RunReport;

class Interrupted extends Error {}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};

async function main(): Promise<void> {
  const o = new Command('bench-faults')
    .option('--workers <n>', 'workers', '16')
    .option('--cards <n>', 'cards per worker', '8')
    .option('--size <bytes>', 'bytes per card', '1MiB')
    .option('--steps <n>', 'steps of each short run', '30')
    .option('--long-steps <n>', 'steps of the random-fault run', '200')
    .option('--repeats <n>', 'runs per fault kind', '3')
    .option('--timeout-ms <ms>', 'collective watchdog of the runs', '2000')
    .parse()
    .opts();
  for (const [flag, v, lo] of [['--workers', o.workers, 1], ['--cards', o.cards, 1], ['--steps', o.steps, 1], ['--long-steps', o.longSteps, 1], ['--repeats', o.repeats, 1], ['--timeout-ms', o.timeoutMs, 1]] as const) {
    if (!Number.isInteger(Number(v)) || Number(v) < lo) throw new Error(`${flag} ${v}: expected an integer >= ${lo}`);
  }
  const common: RunOptions = { workers: Number(o.workers), cardsPerWorker: Number(o.cards), size: o.size, timeoutMs: Number(o.timeoutMs) };
  const short: RunOptions = { ...common, steps: Number(o.steps) };
  const repeats = Number(o.repeats);
  const progress = new ScriptProgress('bench-faults', repeats * 2 + repeats * 5 + 2);
  const log = (line = '') => progress.log(line);
  stopOnSigint((sig) => progress.warn(`bench-faults: ${sig}, stopping the run under way`));
  const run = async (options: RunOptions, timeoutMs: number, what: string): Promise<Report> => {
    progress.running(what);
    const r = await runReport(options, timeoutMs);
    if (r.interrupted) {
      progress.end();
      throw new Interrupted('interrupted');
    }
    progress.advance(1, '');
    return r;
  };
  let broken = 0;
  const check = (what: string, r: Report, digest: string | null) => {
    const good = r.ok && r.stateDigest === digest;
    if (!good) {
      broken++;
      log(`  INVARIANT BROKEN (${what}): ok=${r.ok} digest ${r.stateDigest} vs fault-free ${digest} ${r.error ?? ''}`);
    }
    return good;
  };

  log(`bench-faults: ${o.workers} workers x ${o.cards} cards, ${o.size} per card, watchdog ${o.timeoutMs} ms`);
  // Checkpoint cost: the same run with checkpoints every step and without, interleaved.
  const withCk: number[] = [];
  const without: number[] = [];
  let clean: Report | null = null;
  for (let i = 0; i < repeats; i++) {
    const a = await run({ ...short, checkpointEvery: 1 }, 300_000, 'clean run, checkpoints every step');
    const b = await run({ ...short, checkpointEvery: 0 }, 300_000, 'clean run, no checkpoints');
    clean ??= a;
    check('clean run', a, clean.stateDigest);
    check('clean run without checkpoints', b, clean.stateDigest);
    withCk.push(a.stepMs.p50);
    without.push(b.stepMs.p50);
    log(`  step p50 with checkpoints every step ${a.stepMs.p50.toFixed(1)} ms, without ${b.stepMs.p50.toFixed(1)} ms`);
  }
  const digest = clean!.stateDigest;
  const ckCost = median(withCk) / median(without) - 1;

  const rows: { kind: string; detect: number[]; recover: number[]; by: string[]; located: string[] }[] = [];
  const mid = Math.floor(Number(o.steps) / 2);
  const victim = Math.min(3, Number(o.workers) - 1);
  for (const [kind, spec] of [
    ['kill', `kill:rank=${victim}:step=${mid}:phase=reduce-scatter:chunk=1`],
    ['hang', `hang:rank=${victim}:step=${mid}`],
    ['crash', `crash:rank=${victim}:step=${mid}:phase=all-gather`],
    ['link', `link:from=${victim}:step=${mid}:cut=true:ms=500`],
    ['corrupt', `corrupt:rank=${victim}:step=${mid}`],
  ] as const) {
    const row = { kind, detect: [] as number[], recover: [] as number[], by: [] as string[], located: [] as string[] };
    for (let i = 0; i < repeats; i++) {
      const r = await run({ ...short, inject: [spec] }, 300_000, spec);
      check(spec, r, digest);
      const f = r.faults[0];
      if (f?.detectedAfterMs != null) row.detect.push(f.detectedAfterMs);
      if (f?.recoveredAfterMs != null) row.recover.push(f.recoveredAfterMs - (f.detectedAfterMs ?? 0));
      row.by.push(f?.detectedBy ?? 'none');
      row.located.push(f?.located ?? '?');
    }
    rows.push(row);
    log(`  ${kind}: detected by ${row.by.join('/')} after ${row.detect.join(', ')} ms; located ${[...new Set(row.located)].join(', ')}; detection to resumed ${row.recover.join(', ')} ms`);
  }

  const long = await run({ ...common, steps: Number(o.longSteps), inject: ['random:meanSteps=10:kinds=kill,hang,crash,link,corrupt'], maxRestarts: 100 }, 1_800_000, 'random faults, long run');
  const longClean = await run({ ...common, steps: Number(o.longSteps) }, 1_800_000, 'long run, fault-free');
  progress.end();
  check('random faults, long run', long, longClean.stateDigest);

  log('');
  log('kind     detected by   detect ms (median)  located          detection to resumed ms (median)');
  for (const r of rows) {
    log(
      `${r.kind.padEnd(8)} ${[...new Set(r.by)].join('/').padEnd(13)} ${String(median(r.detect)).padStart(18)}  ${[...new Set(r.located)].join(',').padEnd(16)} ${String(median(r.recover)).padStart(8)}`,
    );
  }
  log('');
  log(`checkpoint every step costs ${(ckCost * 100).toFixed(1)}% of step time (p50 ${median(withCk).toFixed(1)} vs ${median(without).toFixed(1)} ms)`);
  log(
    `${o.longSteps}-step run with a random fault every ~10 steps: ${long.faults.length} faults, ${long.restarts} restarts, digest ${long.stateDigest === longClean.stateDigest ? 'equal to' : 'DIFFERENT from'} the fault-free run, goodput ${(long.goodput.ratio * 100).toFixed(1)}% (${long.goodput.lostSteps} steps lost, ${long.goodput.recomputedSteps} recomputed)`,
  );
  const kill = rows.find((r) => r.kind === 'kill')!;
  const hang = rows.find((r) => r.kind === 'hang')!;
  const targets: [string, boolean][] = [
    [`kill detected in <= 500 ms (median ${median(kill.detect)} ms)`, median(kill.detect) <= 500],
    [`hang located within the watchdog + 500 ms (${median(hang.detect)} ms, watchdog ${o.timeoutMs} ms)`, median(hang.detect) <= Number(o.timeoutMs) + 500],
    [`detection to training resumed <= 2000 ms (worst median ${Math.max(...rows.map((r) => median(r.recover)))} ms)`, rows.every((r) => median(r.recover) <= 2000)],
    [`checkpoint every step costs <= 5% of step time (${(ckCost * 100).toFixed(1)}%)`, ckCost <= 0.05],
    [`random faults end with the fault-free digest`, long.stateDigest === longClean.stateDigest && long.ok],
  ];
  log('\ntargets');
  for (const [what, pass] of targets) log(`  ${pass ? 'PASS' : 'FAIL'}  ${what}`);
  process.exitCode = broken > 0 ? 1 : 0;
}

main().catch((e) => {
  if (e instanceof Interrupted) {
    console.error('bench-faults: interrupted');
    process.exitCode = 130;
  } else {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 2;
  }
});
