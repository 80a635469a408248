// Long soak (issue 5): one long run, 3,000 steps x 64 workers by default (about 11 minutes here: the memory check needs 300 s of warm-up and 30% of the run after it), with a fault every
// --every steps (25, 50, ...: kinds drawn from the seed among kill, hang, crash, link, corrupt, all
// recoverable with restart; or --random for the seed's own random draws at the same mean rate).
// Samples from /proc, over the run, the coordinator's and every worker's RSS and open file
// descriptors. Invariants:
//   - the run is ok (every step, 0 wrong) and ends with the exact fault-free digest (closed form,
//     computed here from the workers' own code), and faults cost at most two steps each;
//   - memory grows by at most 10%, median of the samples of a reference tenth of the run (by time,
//     over steady samples: training under way and exactly W workers alive, so no recovery and no
//     stop is compared) against the last tenth. The reference tenth starts at 40% of the run, and
//     not before 300 s of training: V8's heaps step up for minutes, then hold (a 64-worker
//     coordinator went 98 -> 116 MB between 200 and 245 s into each of three 400-s runs, then held
//     or fell back). For the coordinator, its live heap after each full GC (V8's --trace-gc), as
//     its RSS follows V8's sizing of the heap (RSS when too few full GCs fall in a window); for every worker process alive in both windows
//     (its own growth: workers are replaced on faults, so a process is compared only with itself);
//     and for the workers' mean RSS per alive process (a leak that moves to the replacements);
//   - no leaked file descriptors: the coordinator's count in the last tenth is at most its count
//     in the reference tenth + 2, and no surviving worker gains more than 2;
//   - no leaked process: after the run no worker process of it remains (by pid seen, and by its
//     control URL in the environment of any worker process).
// The run is the typed API's `run` in a child process (scripts/api-child.ts, via run-report.ts): that
// child is the coordinator sampled here; its steps come as the run's events. On a terminal, a
// progress line on stderr (steps done, time elapsed, time left); Ctrl-C stops the run, whose
// partial report is judged (and fails).
// Bounded (--time-limit-s), loopback only; exits 1 when an invariant breaks.
//
//   node dist/scripts/long-soak.js [--steps 3000] [--workers 64] [--every 25] [--cards 8] [--size 16KiB]
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import type { RunOptions } from '../src/api/index.js';
import { parseSize } from '../src/protocol/units.js';
import { seededRandom } from '../src/collective/random.js';
import { cliLine, startJob, stopOnSigint } from './run-report.js';
import { ScriptProgress } from './script-progress.js';
import { childrenOf, controlUrlOf, expectedDigest, fdCount, isWorker, killAll, leftovers, rssOf } from './stress-common.js';

const GROWTH_LIMIT = 0.1;
const FD_SLACK = 2;
/** Training time before memory is compared (V8 warm-up). */
const WARMUP_MS = 300_000;

/** One look at a process: resident bytes and open descriptors. */
interface Look {
  rss: number;
  fds: number;
}

/** Resident bytes (VmRSS) and open descriptors of a process; null when it is gone. */
function look(pid: number): Look | null {
  const rss = rssOf(pid);
  const fds = fdCount(pid);
  return rss === null || fds === null ? null : { rss, fds };
}

/** Faults at steps every, 2 every, ... below steps, kinds and places drawn from the seed (as random faults draw them). */
function scenario(o: { steps: number; every: number; workers: number; seed: number; kinds: string[] }): Record<string, unknown>[] {
  const rand = seededRandom(o.seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const out: Record<string, unknown>[] = [];
  for (let step = o.every; step < o.steps; step += o.every) {
    const kind = o.kinds[int(0, o.kinds.length - 1)]!;
    const rank = int(0, o.workers - 1);
    const at = { step, phase: rand() < 0.5 ? 'reduce-scatter' : 'all-gather', chunk: int(0, 1) };
    if (kind === 'kill') out.push({ kind, rank, at });
    else if (kind === 'hang') out.push({ kind, rank, at, ms: int(200, 1500) });
    else if (kind === 'crash') out.push({ kind, rank, at, code: int(1, 9) });
    else if (kind === 'corrupt') out.push({ kind, rank, at, frames: int(1, 3) });
    else out.push(rand() < 0.5 ? { kind, from: rank, at, cut: true, ms: int(200, 1500) } : { kind, from: rank, at, delayMs: int(20, 100), ms: int(200, 1500) });
  }
  return out;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};
const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
const MB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MB`;

interface Sample {
  t: number;
  /** The newest step the coordinator's progress line named (at most a second old). */
  step: number;
  coordinator: Look | null;
  workers: Map<number, Look>;
}

async function main(): Promise<void> {
  const o = new Command('long-soak')
    .option('--steps <n>', 'training steps', '3000')
    .option('--workers <n>', 'workers', '64')
    .option('--every <n>', 'a fault every this many steps', '25')
    .option('--cards <n>', 'cards per worker', '8')
    .option('--size <bytes>', 'bytes per card', '16KiB')
    .option('--seed <n>', 'seed of the inputs and of the faults', '1')
    .option('--kinds <list>', 'fault kinds drawn from', 'kill,hang,crash,link,corrupt')
    .option('--random', "use the run's random faults (meanSteps = --every) instead of one every --every steps")
    .option('--sample-ms <ms>', 'how often to sample /proc', '1000')
    .option('--timeout-ms <ms>', 'collective watchdog of the run', '2000')
    .option('--time-limit-s <s>', 'the run is interrupted (and fails) after this long', '1800')
    .option('--keep', 'keep the scenario and the report (kept anyway on a failure)')
    .parse()
    .opts();
  const steps = Number(o.steps);
  const W = Number(o.workers);
  const every = Number(o.every);
  const cards = Number(o.cards);
  const seed = Number(o.seed);
  const kinds = String(o.kinds).split(',');
  const dir = mkdtempSync(path.join(tmpdir(), 'ringswarm-long-soak-'));
  const file = path.join(dir, 'scenario.json');
  // The coordinator's log, progress lines aside: kept with the scenario when the soak fails.
  const logFile = path.join(dir, 'coordinator.log');
  const entries = o.random ? [{ kind: 'random', meanSteps: every, kinds }] : scenario({ steps, every, workers: W, seed, kinds });
  writeFileSync(file, JSON.stringify({ faults: entries }, null, 1));
  const job: RunOptions = {
    workers: W, cardsPerWorker: cards, size: o.size, steps, seed,
    timeoutMs: Number(o.timeoutMs), maxRestarts: steps, readyTimeoutMs: 300_000, scenario: file,
  };
  const progress = new ScriptProgress('long-soak', steps, { unit: 'steps', deadline: Date.now() + Number(o.timeLimitS) * 1000, paceFromFirst: true });
  const log = (line = '') => progress.log(line);
  stopOnSigint((sig) => progress.warn(`long-soak: ${sig}, stopping the run; its partial report is judged`));
  console.log(`long-soak: ${W} workers x ${cards} cards, ${o.size} per card, ${steps} steps, ${o.random ? `random faults every ~${every} steps` : `${entries.length} faults (every ${every} steps)`} of ${kinds.join(', ')}; seed ${seed}`);
  console.log(`  ${cliLine('run', job)}`);

  // Steps every rank has finished (as the progress line's `step N/`), -1 until the workers are ready.
  let step = -1;
  const fullGcs: { t: number; mb: number }[] = [];
  const t0 = Date.now();
  const run = startJob('run', job, {
    timeoutMs: Number(o.timeLimitS) * 1000,
    killAfterMs: 30_000,
    stderrChars: 5000,
    // The coordinator's live heap after each full GC: its RSS steps up and down with V8's heap sizing.
    onFullGc: (mb) => fullGcs.push({ t: Date.now() - t0, mb }),
    // The run's events: training under way from `ready`, then each step done, for the samples.
    onEvent: (e) => {
      if (e.type === 'ready' && step < 0) step = 0;
      else if (e.type === 'step') {
        step = e.step + 1;
        progress.set(step);
      }
    },
    onLog: (l) => appendFileSync(logFile, `${l}\n`),
  });
  const coordinator = run.pid;

  const samples: Sample[] = [];
  const seen = new Set<number>();
  let lastPrint = t0;
  const sampler = setInterval(() => {
    const workers = new Map<number, Look>();
    for (const pid of childrenOf(coordinator) ?? []) {
      if (!isWorker(pid)) continue;
      seen.add(pid);
      const l = look(pid);
      if (l) workers.set(pid, l);
    }
    const s: Sample = { t: Date.now() - t0, step, coordinator: look(coordinator), workers };
    samples.push(s);
    if (s.t - (lastPrint - t0) >= 30_000) {
      lastPrint = Date.now();
      const rss = [...workers.values()].map((l) => l.rss);
      log(
        `  ${(s.t / 1000).toFixed(0)} s: step ${step}/${steps}, coordinator ${s.coordinator ? `${MB(s.coordinator.rss)} ${s.coordinator.fds} fds` : '-'}, ` +
          `${workers.size} workers, RSS median ${rss.length ? MB(median(rss)) : '-'}, ${seen.size} worker processes seen`,
      );
    }
  }, Number(o.sampleMs));
  const { report, timedOut, error, stderrTail: errTail } = await run.done;
  clearInterval(sampler);
  progress.end();

  const broken: string[] = [];
  if (!report) broken.push(`no report: ${error ? error.message : errTail.slice(-1500)}`);
  if (timedOut) broken.push(`interrupted by the time bound (${o.timeLimitS} s)`);
  else if (report?.interrupted) broken.push('interrupted (SIGINT/SIGTERM)');

  // Leaks of processes: any worker process whose environment names this run's control URL (which
  // covers every pid seen here, and any the sampling missed), after 5 s to exit by itself.
  const url = report?.controlUrl ?? [...seen].map(controlUrlOf).find((u) => u !== null) ?? null;
  const leaked = url ? await leftovers(url, 5_000) : killAll([...seen].filter(isWorker));

  console.log('');
  if (report) {
    const want = expectedDigest({ workers: W, cards, bytesPerCard: parseSize(o.size), steps, seed });
    if (!report.ok) broken.push(`run not ok: ${report.error ?? '?'}`);
    if (report.wrong) broken.push(`${report.wrong} wrong elements`);
    if (report.stateDigest !== want) broken.push(`digest ${report.stateDigest ?? '(none)'} is not the fault-free ${want}`);
    // With a checkpoint every step a fault costs at most a step or two: a rollback far behind is a bug
    // (this session's soak lost 1,250 steps to two rollbacks to step 0 and still said PASS).
    const lostLimit = 2 * report.faults.length;
    if (report.goodput.lostSteps > lostLimit) {
      const far = report.faults.filter((f) => (f.lostSteps ?? 0) > 2).map((f) => `${f.kind} at step ${f.atStep}: ${f.lostSteps} lost`);
      broken.push(`${report.goodput.lostSteps} steps lost to ${report.faults.length} faults (> ${lostLimit}): ${far.join('; ')}`);
    }
    const injected = report.faults.filter((f) => f.injected).length;
    console.log(
      `run: ${report.ok ? 'ok' : 'NOT OK'}, ${report.stepsCompleted}/${steps} steps, ${report.wrong} wrong, digest ${report.stateDigest === want ? 'exact' : 'WRONG'}; ` +
        `${report.faults.length} faults (${injected} injected, ${entries.length} in the scenario), ${report.restarts} restarts, ${report.epochs.length} epochs; ` +
        `goodput ${(report.goodput.ratio * 100).toFixed(1)}% (${report.goodput.lostSteps} lost, ${report.goodput.recomputedSteps} recomputed); ` +
        `step p50 ${report.stepMs.p50.toFixed(1)} ms; startup ${report.startupMs} ms; wall ${(report.wallMs / 1000).toFixed(1)} s`,
    );
  }

  // Steady samples: training under way (workers ready, last step not yet in) with exactly W
  // workers alive, so neither a recovery (a worker gone, or its replacement starting) nor the
  // stop at the end is compared. Windows by time over them: a reference tenth (after warm-up), and the last.
  const steady = samples.filter((s) => s.step >= 0 && s.step < steps && s.workers.size === W);
  const ta = steady[0]?.t ?? 0;
  const span = (steady[steady.length - 1]?.t ?? 0) - ta;
  const inWindow = (lo: number, hi: number) => steady.filter((s) => s.t >= ta + lo * span && s.t <= ta + hi * span);
  // The reference tenth starts after warm-up, by time: V8's heaps step up for minutes (the
  // coordinator's RSS went 98 -> 116 MB at 200-245 s into every 400-s run, then held, or fell).
  const refAt = Math.max(0.4, span > 0 ? WARMUP_MS / span : 1);
  const second = refAt <= 0.7 ? inWindow(refAt, refAt + 0.1) : [];
  const last = inWindow(0.9, 1);
  const stepsOf = (ss: Sample[]) => (ss.length ? `steps ~${ss[0]!.step}-${ss[ss.length - 1]!.step}` : 'none');
  console.log(
    `${samples.length} samples every ${o.sampleMs} ms, ${steady.length} steady over ${(span / 1000).toFixed(0)} s: ` +
      `${second.length} in the reference tenth from ${(refAt * 100).toFixed(0)}% (${stepsOf(second)}), ${last.length} in the last tenth (${stepsOf(last)})`,
  );
  if (second.length < 3 || last.length < 3) {
    broken.push(
      refAt > 0.7
        ? `too short to judge growth: ${(span / 1000).toFixed(0)} s of steady training, the reference window starts ${WARMUP_MS / 1000} s in and needs 30% of the run after it (more --steps)`
        : `too few samples to judge growth (${second.length} and ${last.length}; a longer run, or a smaller --sample-ms)`,
    );
  } else {
    const series = (ss: Sample[], f: (s: Sample) => number | null) => ss.map(f).filter((x): x is number => x !== null && Number.isFinite(x));
    const growth = (f: (s: Sample) => number | null) => {
      const a = median(series(second, f));
      const b = median(series(last, f));
      return { a, b, g: b / a - 1 };
    };
    const c = growth((s) => s.coordinator?.rss ?? null);
    const gcIn = (lo: number, hi: number) => fullGcs.filter((g) => g.t >= ta + lo * span && g.t <= ta + hi * span).map((g) => g.mb);
    const [ha, hb] = [gcIn(refAt, refAt + 0.1), gcIn(0.9, 1)];
    if (ha.length >= 2 && hb.length >= 2) {
      // Judged by its live heap; RSS follows V8's sizing of the heap (it stepped 98 -> 116 MB and back in runs that kept 0 more).
      const g = median(hb) / median(ha) - 1;
      console.log(`coordinator heap after full GCs: ${median(ha).toFixed(1)} MB (${ha.length}) -> ${median(hb).toFixed(1)} MB (${hb.length}) (${pct(g)}); RSS ${MB(c.a)} -> ${MB(c.b)} (${pct(c.g)})`);
      if (!(g <= GROWTH_LIMIT)) broken.push(`coordinator heap grew ${pct(g)} (> ${pct(GROWTH_LIMIT)})`);
    } else {
      console.log(`coordinator RSS: ${MB(c.a)} -> ${MB(c.b)} (${pct(c.g)}) (too few full GCs to judge its heap: ${ha.length} and ${hb.length})`);
      if (!(c.g <= GROWTH_LIMIT)) broken.push(`coordinator RSS grew ${pct(c.g)} (> ${pct(GROWTH_LIMIT)})`);
    }
    const meanRss = growth((s) => (s.workers.size ? [...s.workers.values()].reduce((x, l) => x + l.rss, 0) / s.workers.size : null));
    console.log(`workers' mean RSS per process: ${MB(meanRss.a)} -> ${MB(meanRss.b)} (${pct(meanRss.g)}); x ${W} = ${MB(meanRss.a * W)} -> ${MB(meanRss.b * W)}`);
    if (!(meanRss.g <= GROWTH_LIMIT)) broken.push(`workers' mean RSS grew ${pct(meanRss.g)} (> ${pct(GROWTH_LIMIT)})`);
    // Per process: those present in both windows, each against itself.
    const survivors = [...seen].filter((pid) => second.some((s) => s.workers.has(pid)) && last.some((s) => s.workers.has(pid)));
    const per = survivors.map((pid) => {
      const rss = growth((s) => s.workers.get(pid)?.rss ?? null);
      const fds = growth((s) => s.workers.get(pid)?.fds ?? null);
      return { pid, rss: rss.g, fdsA: fds.a, fdsB: fds.b };
    });
    if (per.length) {
      const gs = per.map((p) => p.rss);
      const worst = per.reduce((x, y) => (y.rss > x.rss ? y : x));
      console.log(`per worker process RSS growth (${per.length} alive in both windows): median ${pct(median(gs))}, max ${pct(worst.rss)} (pid ${worst.pid}), min ${pct(Math.min(...gs))}`);
      if (worst.rss > GROWTH_LIMIT) broken.push(`worker pid ${worst.pid} RSS grew ${pct(worst.rss)} (> ${pct(GROWTH_LIMIT)})`);
      const fdWorst = per.reduce((x, y) => (y.fdsB - y.fdsA > x.fdsB - x.fdsA ? y : x));
      console.log(`worker fds: median ${median(per.map((p) => p.fdsA))} -> ${median(per.map((p) => p.fdsB))}; largest change ${fdWorst.fdsB - fdWorst.fdsA} (pid ${fdWorst.pid})`);
      if (fdWorst.fdsB - fdWorst.fdsA > FD_SLACK) broken.push(`worker pid ${fdWorst.pid} fds ${fdWorst.fdsA} -> ${fdWorst.fdsB}`);
    } else {
      console.log('per worker process: no worker process alive in both windows');
    }
    const cf = growth((s) => s.coordinator?.fds ?? null);
    const firstFds = samples.find((s) => s.step >= 0 && s.coordinator)?.coordinator?.fds;
    const finalFds = [...last].reverse().find((s) => s.coordinator)?.coordinator?.fds;
    console.log(`coordinator fds: ${cf.a} (reference tenth) -> ${cf.b} (last tenth); first training sample ${firstFds ?? '-'}, final ${finalFds ?? '-'}`);
    if (cf.b - cf.a > FD_SLACK) broken.push(`coordinator fds ${cf.a} -> ${cf.b}`);
  }
  console.log(`worker processes: ${seen.size} seen (${W} at start + replacements; report: ${report?.restarts ?? '?'} restarts), ${leaked.length} left after the run`);
  if (leaked.length) broken.push(`${leaked.length} worker processes left behind (pids ${leaked.slice(0, 10).join(', ')}; killed now)`);

  console.log('');
  console.log(`${broken.length ? 'FAIL' : 'PASS'}`);
  for (const b of broken) console.log(`  ${b}`);
  if (broken.length || o.keep) {
    // Kept to replay: the scenario and the report.
    if (report) writeFileSync(path.join(dir, 'report.json'), JSON.stringify(report, null, 1));
    console.log(`  kept ${file}, ${logFile}${report ? ` and ${path.join(dir, 'report.json')}` : ''}; replay: ${cliLine('run', job)}`);
  } else {
    rmSync(dir, { recursive: true, force: true });
  }
  process.exitCode = broken.length ? 1 : 0;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 2;
});
