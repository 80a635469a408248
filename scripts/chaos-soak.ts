// Chaos soak (issue 5): for --minutes, one run after another, each from the next seed: the seed
// draws the run's shape (8-16 workers, cards, size, steps, checkpoint interval, restart or spare)
// and a scenario of faults (kill, hang, crash, link, corrupt, random) and stragglers (slow,
// slow-link, jitter, pause), written to a temporary YAML file and given as the run's `scenario`.
// Each run is the typed API's `run` in a child process (scripts/api-child.ts, via run-report.ts). Every
// run must end ok with the fault-free digest of its seed and shape (computed here in closed form
// from the workers' own code; the first run also checks that against a real fault-free run), and
// leave no worker process behind. Prints a line per run, a summary, and for every failure the seed,
// the exact command line and the scenario to replay it. On a terminal, a progress line on stderr
// (runs done, time elapsed, time left); Ctrl-C stops the run under way and prints the summary. Bounded: no run starts after --minutes,
// and each run has a timeout. Loopback only. Exits 1 on any failure.
//
//   node dist/scripts/chaos-soak.js [--minutes 5] [--seed-start 1] [--runs N] [--min-workers 8] [--max-workers 16]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { stringify } from 'yaml';
import type { RunOptions } from '../src/api/index.js';
import { parseSize } from '../src/protocol/units.js';
import { seededRandom } from '../src/collective/random.js';
import { FAULT_KINDS, FAULT_PHASES, STRAGGLER_KINDS } from '../src/protocol/faults.js';
import { cliLine, isInterrupted, startJob, stopOnSigint } from './run-report.js';
import { ScriptProgress } from './script-progress.js';
import { expectedDigest, leftovers, type RunShape } from './stress-common.js';


interface Plan {
  shape: RunShape;
  size: string;
  /** Options besides the shape and the scenario (checkpointDir 'DISK': a fresh directory). */
  options: RunOptions;
  entries: Record<string, unknown>[];
  summary: string;
}

/** Everything about run `seed`, drawn from it alone, so that `--seed-start seed --runs 1` replays it. */
function plan(seed: number, minWorkers: number, maxWorkers: number): Plan {
  const rand = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const chance = (p: number) => rand() < p;
  const workers = int(minWorkers, maxWorkers);
  const cards = pick([1, 2, 4, 8]);
  const size = pick(['4KiB', '16KiB', '64KiB', '256KiB']);
  const steps = int(20, 40);
  const chunk = pick(['16KiB', '64KiB', '1MiB']);
  const checkpointEvery = pick([1, 1, 2, 4]);
  const computeMs = pick([0, 0, 5]);
  const options: RunOptions = { chunk, checkpointEvery, computeMs, timeoutMs: 2000, maxRestarts: 100 };
  if (chance(0.25)) Object.assign(options, { onFailure: 'spare', spares: int(1, 2) });
  const disk = chance(0.2);

  const phase = () => pick(FAULT_PHASES);
  const at = (step: number): Record<string, unknown> => {
    const a: Record<string, unknown> = { step };
    if (chance(0.6)) {
      a.phase = phase();
      if (chance(0.5)) a.chunk = int(0, 2);
    }
    return a;
  };
  const entries: Record<string, unknown>[] = [];
  const nFaults = int(1, 4);
  for (let i = 0; i < nFaults; i++) {
    const kind = pick(FAULT_KINDS);
    const rank = int(0, workers - 1);
    // Mostly a step trigger; sometimes a time after training starts (it may come after the end).
    const trigger = chance(0.1) ? { ms: int(0, 3000) } : at(int(0, steps - 1));
    switch (kind) {
      case 'kill':
        entries.push({ kind, rank, at: trigger });
        break;
      case 'hang':
        entries.push(chance(0.3) ? { kind, rank, at: trigger } : { kind, rank, at: trigger, ms: int(100, 3000) });
        break;
      case 'crash':
        entries.push({ kind, rank, at: trigger, code: int(1, 9) });
        break;
      case 'link':
        entries.push(chance(0.5) ? { kind, from: rank, at: trigger, cut: true, ms: int(100, 2000) } : { kind, from: rank, at: trigger, delayMs: int(10, 200), ms: int(100, 2000) });
        break;
      case 'corrupt':
        entries.push({ kind, rank, at: trigger, frames: int(1, 3) });
        break;
    }
  }
  if (chance(0.3)) {
    const kinds = FAULT_KINDS.filter(() => chance(0.6));
    entries.push({ kind: 'random', meanSteps: int(6, 15), ...(kinds.length ? { kinds } : {}) });
  }
  const nStragglers = int(0, 2);
  for (let i = 0; i < nStragglers; i++) {
    const kind = pick(STRAGGLER_KINDS);
    const rank = int(0, workers - 1);
    const span = chance(0.5) ? { steps: int(3, 15) } : {};
    switch (kind) {
      case 'slow':
        entries.push({ kind, rank, at: { step: int(0, steps - 1) }, ...(chance(0.5) ? { factor: 1.5 + Math.round(rand() * 25) / 10 } : { addMs: int(2, 30) }), ...span });
        break;
      case 'slow-link':
        entries.push({ kind, from: rank, at: { step: int(0, steps - 1) }, ...(chance(0.5) ? { delayMs: int(2, 30) } : { bandwidth: pick(['20MiB', '100MiB']) }), ...span });
        break;
      case 'jitter':
        entries.push({ kind, maxMs: int(1, 10) });
        break;
      case 'pause': {
        const everyMs = int(200, 600);
        entries.push({ kind, rank, ms: int(10, Math.min(150, everyMs - 1)), everyMs, ...(chance(0.5) ? { at: { step: int(0, steps - 1) } } : {}), ...(chance(0.5) ? span : { forMs: int(500, 3000) }) });
        break;
      }
    }
  }
  const summary = entries
    .map((e) => {
      const where = e.rank ?? e.from;
      const a = e.at as { step?: number; ms?: number } | undefined;
      const when = a ? (a.step !== undefined ? `@${a.step}` : `@${a.ms}ms`) : '';
      return `${e.kind}${where !== undefined ? ` ${where}` : ''}${when}`;
    })
    .join(', ');
  return {
    shape: { workers, cards, bytesPerCard: parseSize(size), steps, seed },
    size,
    options: disk ? { ...options, checkpointDir: 'DISK' } : options,
    entries,
    summary: `${summary}${options.onFailure === 'spare' ? '; spare' : ''}${disk ? '; disk tier' : ''}; checkpoint every ${checkpointEvery}`,
  };
}

/** The API's `run` in a child. SIGINT after timeoutMs (a partial report follows), SIGKILL 20 s later. */
const runJob = (options: RunOptions, timeoutMs: number) => startJob('run', options, { timeoutMs, killAfterMs: 20_000, stderrChars: 3000 }).done;

async function main(): Promise<void> {
  const o = new Command('chaos-soak')
    .option('--minutes <m>', 'start no run after this long', '5')
    .option('--seed-start <n>', 'seed of the first run; each next run takes the next seed', '1')
    .option('--runs <n>', 'stop after this many runs (e.g. 1 to replay a seed)')
    .option('--min-workers <n>', 'fewest workers of a run', '8')
    .option('--max-workers <n>', 'most workers of a run', '16')
    .option('--run-timeout-s <s>', 'a run still going after this long fails', '180')
    .option('--no-clean-check', 'skip the fault-free run that checks the closed-form digest')
    .parse()
    .opts();
  const minutes = Number(o.minutes);
  const until = Date.now() + minutes * 60_000;
  const maxRuns = o.runs === undefined ? Infinity : Number(o.runs);
  const minW = Number(o.minWorkers);
  const maxW = Number(o.maxWorkers);
  const dir = mkdtempSync(path.join(tmpdir(), 'ringswarm-chaos-'));
  const script = `node dist/scripts/chaos-soak.js`;
  const progress = new ScriptProgress('chaos-soak', Number.isFinite(maxRuns) ? maxRuns : null, { deadline: until });
  const log = (line = '') => progress.log(line);
  stopOnSigint((sig) => progress.warn(`chaos-soak: ${sig}, stopping the run under way; the summary follows`));
  log(`chaos-soak: ${minutes} min from seed ${o.seedStart}, ${minW}-${maxW} workers; scenarios in ${dir}`);
  const failures: { seed: number; why: string[]; command: string; scenario: string }[] = [];
  const totals = { runs: 0, faults: 0, injected: 0, restarts: 0, stragglers: 0, wallMs: 0, goodput: [] as number[] };
  let cleanChecked = !o.cleanCheck;
  for (let seed = Number(o.seedStart); totals.runs < maxRuns && Date.now() < until && !isInterrupted(); seed++) {
    const p = plan(seed, minW, maxW);
    const file = path.join(dir, `seed-${seed}.yaml`);
    const scenario = stringify({ faults: p.entries });
    writeFileSync(file, `# chaos-soak seed ${seed}\n${scenario}`);
    const diskDir = p.options.checkpointDir === 'DISK' ? mkdtempSync(path.join(dir, `ckpt-${seed}-`)) : null;
    const shape: RunOptions = { workers: p.shape.workers, cardsPerWorker: p.shape.cards, size: p.size, steps: p.shape.steps, seed };
    const job: RunOptions = { ...shape, ...p.options, ...(diskDir ? { checkpointDir: diskDir } : {}), scenario: file };
    const command = cliLine('run', job);
    progress.running(`seed ${seed}, ${p.shape.workers}x${p.shape.cards} ${p.size} ${p.shape.steps} steps`);
    const want = expectedDigest(p.shape);
    const why: string[] = [];
    if (!cleanChecked) {
      // Once: the closed form against a real fault-free run of the same seed and shape.
      const clean = await runJob(shape, Number(o.runTimeoutS) * 1000);
      cleanChecked = true;
      const same = clean.report?.ok && clean.report.stateDigest === want;
      log(`  closed-form digest ${same ? 'equals' : 'DIFFERS from'} the fault-free run of seed ${seed} (${clean.report?.stateDigest ?? 'no report'})`);
      if (!same) why.push(`the closed-form digest ${want} is not the fault-free run's ${clean.report?.stateDigest ?? '(none)'}`);
    }
    const t0 = Date.now();
    const { report: r, timedOut, code, error, stderrTail } = await runJob(job, Number(o.runTimeoutS) * 1000);
    const wall = Date.now() - t0;
    if (isInterrupted() && !timedOut && (!r || r.interrupted)) {
      // Stopped by the user, not by its own failing: neither counted nor judged.
      log(`seed ${String(seed).padStart(5)}  interrupted${r ? ` after ${r.stepsCompleted}/${p.shape.steps} steps` : ''}; not counted`);
      if (r) await leftovers(r.controlUrl, 5_000);
      rmSync(file, { force: true });
      if (diskDir) rmSync(diskDir, { recursive: true, force: true });
      break;
    }
    totals.runs++;
    if (!r) why.push(`no report (exit ${code}${timedOut ? `, timed out after ${o.runTimeoutS} s` : ''}${error ? `: ${error.message}` : ''})`);
    else {
      if (timedOut) why.push(`timed out after ${o.runTimeoutS} s`);
      if (!r.ok) why.push(`not ok: ${r.error ?? '?'}`);
      if (r.wrong) why.push(`${r.wrong} wrong elements`);
      if (r.stateDigest !== want) why.push(`digest ${r.stateDigest ?? '(none)'} is not the fault-free ${want}`);
      const left = await leftovers(r.controlUrl, 5_000);
      if (left.length) why.push(`${left.length} worker processes left behind (pids ${left.slice(0, 10).join(', ')}; killed now)`);
      totals.faults += r.faults.length;
      totals.injected += r.faults.filter((f) => f.injected).length;
      totals.restarts += r.restarts;
      totals.stragglers += r.stragglers.length;
      totals.goodput.push(r.goodput.ratio);
    }
    totals.wallMs += wall;
    progress.advance(1, '');
    const figures = r
      ? `faults ${r.faults.length} restarts ${r.restarts} stragglers ${r.stragglers.length} goodput ${(r.goodput.ratio * 100).toFixed(0)}% lost ${r.goodput.lostSteps} wall ${r.wallMs} ms`
      : `wall ${wall} ms`;
    log(`seed ${String(seed).padStart(5)}  ${p.shape.workers}x${p.shape.cards} ${p.size} ${p.shape.steps} steps  ${figures}  ${why.length ? 'FAIL' : 'ok'}`);
    log(`            ${p.summary}`);
    if (why.length) {
      for (const w of why) log(`    ${w}`);
      if (!r) log(stderrTail.replace(/^/gm, '    | '));
      failures.push({ seed, why, command, scenario: file });
    } else {
      rmSync(file, { force: true });
    }
    if (diskDir) rmSync(diskDir, { recursive: true, force: true });
  }
  const g = [...totals.goodput].sort((a, b) => a - b);
  log('');
  log(
    `summary: ${totals.runs} runs (seeds ${o.seedStart}..${Number(o.seedStart) + totals.runs - 1}), ${failures.length} failed; ` +
      `${totals.faults} faults (${totals.injected} injected), ${totals.restarts} restarts, ${totals.stragglers} stragglers reported; ` +
      `goodput median ${g.length ? (g[Math.floor((g.length - 1) / 2)]! * 100).toFixed(0) : '-'}% (min ${g.length ? (g[0]! * 100).toFixed(0) : '-'}%); ${(totals.wallMs / 1000).toFixed(0)} s of runs`,
  );
  for (const f of failures) {
    log(`\nFAILED seed ${f.seed}: ${f.why.join('; ')}`);
    log(`  replay:   ${script} --seed-start ${f.seed} --runs 1 --min-workers ${minW} --max-workers ${maxW}`);
    log(`  or:       ${f.command}`);
    log(`  scenario (kept): ${f.scenario}`);
    log(readFileSync(f.scenario, 'utf8').replace(/^/gm, '    '));
  }
  if (isInterrupted()) log(`\ninterrupted: ${totals.runs} runs counted`);
  progress.end();
  if (!failures.length) rmSync(dir, { recursive: true, force: true });
  process.exitCode = failures.length ? 1 : isInterrupted() ? 130 : 0;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 2;
});
