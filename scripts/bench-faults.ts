// Fault benchmark for the targets, on 16 workers x 8 cards by default. Each figure comes
// from a real run of the CLI (JSON report); the fault-free digest of the same seed and flags is
// the reference every faulty run must end with. Prints a table and PASS/FAIL per target; exits
// non-zero only when an invariant breaks (a wrong digest, a failed run), not on a missed target.
//
//   node dist/scripts/bench-faults.js [--workers 16] [--cards 8] [--size 1MiB] [--steps 30] [--long-steps 200]
import { Command } from 'commander';
import { runReport } from './run-report.js';


interface Report {
  ok: boolean;
  error?: string;
  stateDigest: string | null;
  stepMs: { p50: number };
  faults: { kind: string; detectedBy: string | null; detectedAfterMs: number | null; located: string | null; recoveredAfterMs: number | null; injected: boolean }[];
  goodput: { ratio: number; lostSteps: number; recomputedSteps: number; productiveMs: number; wallMs: number };
  restarts: number;
  wallMs: number;
}

const run = (args: string[], timeoutMs: number) => runReport<Report>(args, timeoutMs);

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
  const common = ['-w', o.workers, '-g', o.cards, '-s', o.size, '--timeout-ms', o.timeoutMs];
  const short = [...common, '--steps', o.steps];
  let broken = 0;
  const check = (what: string, r: Report, digest: string | null) => {
    const good = r.ok && r.stateDigest === digest;
    if (!good) {
      broken++;
      console.log(`  INVARIANT BROKEN (${what}): ok=${r.ok} digest ${r.stateDigest} vs fault-free ${digest} ${r.error ?? ''}`);
    }
    return good;
  };

  console.log(`bench-faults: ${o.workers} workers x ${o.cards} cards, ${o.size} per card, watchdog ${o.timeoutMs} ms`);
  // Checkpoint cost: the same run with checkpoints every step and without, interleaved.
  const withCk: number[] = [];
  const without: number[] = [];
  let clean: Report | null = null;
  for (let i = 0; i < Number(o.repeats); i++) {
    const a = await run([...short, '--checkpoint-every', '1'], 300_000);
    const b = await run([...short, '--checkpoint-every', '0'], 300_000);
    clean ??= a;
    check('clean run', a, clean.stateDigest);
    check('clean run without checkpoints', b, clean.stateDigest);
    withCk.push(a.stepMs.p50);
    without.push(b.stepMs.p50);
    console.log(`  step p50 with checkpoints every step ${a.stepMs.p50.toFixed(1)} ms, without ${b.stepMs.p50.toFixed(1)} ms`);
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
    for (let i = 0; i < Number(o.repeats); i++) {
      const r = await run([...short, '--inject', spec], 300_000);
      check(spec, r, digest);
      const f = r.faults[0];
      if (f?.detectedAfterMs != null) row.detect.push(f.detectedAfterMs);
      if (f?.recoveredAfterMs != null) row.recover.push(f.recoveredAfterMs - (f.detectedAfterMs ?? 0));
      row.by.push(f?.detectedBy ?? 'none');
      row.located.push(f?.located ?? '?');
    }
    rows.push(row);
    console.log(`  ${kind}: detected by ${row.by.join('/')} after ${row.detect.join(', ')} ms; located ${[...new Set(row.located)].join(', ')}; detection to resumed ${row.recover.join(', ')} ms`);
  }

  const long = await run([...common, '--steps', o.longSteps, '--inject', 'random:meanSteps=10:kinds=kill,hang,crash,link,corrupt', '--max-restarts', '100'], 1_800_000);
  const longClean = await run([...common, '--steps', o.longSteps], 1_800_000);
  check('random faults, long run', long, longClean.stateDigest);

  console.log('');
  console.log('kind     detected by   detect ms (median)  located          detection to resumed ms (median)');
  for (const r of rows) {
    console.log(
      `${r.kind.padEnd(8)} ${[...new Set(r.by)].join('/').padEnd(13)} ${String(median(r.detect)).padStart(18)}  ${[...new Set(r.located)].join(',').padEnd(16)} ${String(median(r.recover)).padStart(8)}`,
    );
  }
  console.log('');
  console.log(`checkpoint every step costs ${(ckCost * 100).toFixed(1)}% of step time (p50 ${median(withCk).toFixed(1)} vs ${median(without).toFixed(1)} ms)`);
  console.log(
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
  console.log('\ntargets');
  for (const [what, pass] of targets) console.log(`  ${pass ? 'PASS' : 'FAIL'}  ${what}`);
  process.exitCode = broken > 0 ? 1 : 0;
}

void main();
