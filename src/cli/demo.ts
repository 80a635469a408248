// `ringswarm demo` (what `npm start` runs): a `run` with the demo's defaults (16 workers x 8 cards,
// the ring) and three faults drawn from the seed: a kill in the middle of a reduce-scatter, a hang
// and a slow link. It shows the ring live, a line per fault healed and per straggler named, and
// ends with a verdict: every fault healed, the slow link named, the result exact and the state
// digest equal to the fault-free run's (computed in closed form, in a thread, while the run
// trains). It is the run's own path (runConfig, the preflight checks, runJob) with a different
// view; its flags are run's, copied from that command, so a flag added to run is the demo's too.
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import type { RunOptions } from '../api/options.js';
import type { JobStatus } from '../protocol/operator.js';
import { formatBytes } from '../protocol/units.js';
import { RingswarmUsageError } from '../api/errors.js';
import { DEMO_DEFAULTS, demoFaults } from './demo-plan.js';
import { demoSummary, faultLine, LEGEND, liveLine, seconds, stragglerLine } from './demo-view.js';
import { interruptible } from './interrupt.js';
import { writeJson } from './json.js';
import { etaSeconds, Progress } from './progress.js';

/** Run's flags that the demo leaves out: --what-if runs the job twice (`run` does that). */
const NOT_FOR_THE_DEMO = new Set(['whatIf']);

const DEFAULT_HELP: Record<string, string> = {
  size: '256KiB',
  inject: "a kill, a hang and a slow link drawn from --seed; --inject or --scenario replaces them",
};

/** runs/demo-20261202T171530Z: the demo's folder for this run, by its start time. */
export function runFolder(now: Date, root = 'runs'): string {
  return join(root, `demo-${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`);
}

/** `ringswarm demo`, registered after `run` (whose flags it copies with the demo's defaults). */
export function registerDemo(program: Command): void {
  const run = program.commands.find((c) => c.name() === 'run');
  if (!run) throw new Error('registerDemo: register the run command first');
  const cmd = program
    .command('demo')
    .description("what ringswarm is for, in half a minute: a ring all-reduce on 16 workers x 8 cards with a kill mid reduce-scatter, a hang and a slow link, found, located and healed; the result exact and the digest the fault-free run's (run's flags, with the demo's defaults)");
  for (const o of run.options) {
    const name = o.attributeName();
    if (NOT_FOR_THE_DEMO.has(name)) continue;
    const copy = Object.assign(new Option(o.flags, o.description), o);
    const d = (DEMO_DEFAULTS as Record<string, unknown>)[name];
    if (d !== undefined) copy.default(d, DEFAULT_HELP[name]);
    else if (DEFAULT_HELP[name]) copy.default(copy.defaultValue, DEFAULT_HELP[name]);
    if (name === 'json') copy.description = `${o.description} (default: runs/demo-<time>/report.json)`;
    cmd.addOption(copy);
  }
  cmd.action((o: Record<string, any>, c: Command) => demo(o, c));
}

async function demo(o: Record<string, any>, cmd: Command): Promise<void> {
  const [{ runConfig }, { runJob }, { checkCheckpointDir, checkMemory, checkPortFree }, { faultFreeDigestInThread }] = await Promise.all([
    import('../api/options.js'),
    import('../coordinator/run.js'),
    import('./preflight.js'),
    import('./fault-free-thread.js'),
  ]);
  const own = (k: string) => cmd.getOptionValueSource(k) === 'cli';
  const ownFaults = own('inject') || own('scenario');
  const plan = ownFaults ? null : demoFaults({ workers: o.workers, steps: o.steps, seed: o.seed, bytesPerCard: o.size, chunkBytes: o.chunk, dtype: o.dtype });
  const folder = runFolder(new Date());
  const jsonPath: string = own('json') ? o.json : join(folder, 'report.json');
  const paths = { report: jsonPath, log: join(folder, 'run.log'), html: join(folder, 'report.html'), trace: join(folder, 'trace.json') };
  const options: RunOptions = {
    ...(o as RunOptions),
    ...(plan ? { inject: plan.injects } : {}),
    // The pictures of the run: the HTML report and the timeline (for Perfetto), beside the JSON.
    html: own('html') ? o.html : paths.html,
    trace: own('trace') ? o.trace : paths.trace,
  };
  const cfg = await runConfig(options, 'run');
  checkMemory({ localWorkers: cfg.spawn + cfg.spares, ringSize: cfg.workers, cardsPerWorker: cfg.cardsPerWorker, bytesPerCard: cfg.bytesPerCard, checkpointEvery: cfg.checkpointEvery });
  await checkPortFree(cfg.host, cfg.port);
  if (cfg.checkpointDir) await checkCheckpointDir(cfg.checkpointDir);

  const out = jsonPath === '-' ? process.stderr : process.stdout;
  const progress = new Progress(out, 'quiet');
  const color = progress.isTTY && !process.env.NO_COLOR;
  try {
    mkdirSync(folder, { recursive: true });
  } catch (e) {
    throw new RingswarmUsageError(`the demo writes its report and log to ${folder}: ${(e as Error).message} (run it in a folder you can write to)`);
  }
  const log = createWriteStream(paths.log);
  const stop = interruptible(progress);

  const algoSaid = cfg.algo === 'auto' ? 'auto (per epoch, by the alpha-beta model)' : `${cfg.algo}${own('algo') ? '' : ' (--algo ring; give --algo to choose)'}`;
  progress.line(
    `ringswarm demo: ${cfg.workers} workers x ${cfg.cardsPerWorker} cards = ${cfg.workers * cfg.cardsPerWorker} cards, ${formatBytes(cfg.bytesPerCard)} ${cfg.dtype} ${cfg.op} per card, ` +
      `${cfg.steps} steps of ${cfg.computeMs} ms compute + all-reduce, algorithm ${algoSaid}, seed ${cfg.seed}`,
  );
  if (plan) {
    const { kill, hang, slowLink } = plan;
    progress.line(
      `faults, from seed ${cfg.seed}: kill rank ${kill.rank} at step ${kill.step} in the middle of its reduce-scatter; hang rank ${hang.rank} at step ${hang.step} (for good); ` +
        `slow link ${slowLink.from}->${slowLink.to} from step ${slowLink.step} (+${slowLink.delayMs} ms a frame)`,
    );
  } else progress.line(`faults: yours (${[...(o.inject as string[]), ...(o.scenario ? [o.scenario] : [])].join(' ')})`);
  progress.line(`on failure: ${cfg.onFailure}, checkpoints every ${cfg.checkpointEvery} step(s); run log: ${paths.log}`);
  if (progress.isTTY) progress.line(`ranks: ${LEGEND}`);

  const digestThread = faultFreeDigestInThread({ workers: cfg.workers, cardsPerWorker: cfg.cardsPerWorker, bytesPerCard: cfg.bytesPerCard, dtype: cfg.dtype, op: cfg.op, steps: cfg.steps, seed: cfg.seed });
  digestThread.result.catch(() => {});

  let status: (() => JobStatus) | null = null;
  let readyAt: number | null = null;
  let stepsDone = 0;
  let lastStepMs: number | null = null;
  const draw = () => {
    if (!progress.isTTY || !status) return;
    const s = status();
    const eta = readyAt === null ? null : etaSeconds(stepsDone, cfg.steps, performance.now() - readyAt);
    progress.update(liveLine(s, { stepMs: lastStepMs, etaS: eta, color, maxCells: Math.max(16, Math.min(128, (out.columns || 120) - 80)) }));
  };
  // A status snapshot costs the coordinator's thread more with more ranks (p50 53 ms at 256): look less often then.
  const ticker = progress.isTTY ? setInterval(draw, Math.max(250, cfg.workers * 4)) : null;
  const report = await runJob(
    cfg,
    {
      progress: (l) => log.write(`${l}\n`),
      log: (l) => log.write(`${l}\n`),
      listening: (url, token) => {
        log.write(`coordinator listening on ${url}; live status: ringswarm status --url ${url} --token ${token}\n`);
        if (cfg.spawn < cfg.workers) progress.line(`waiting for ${cfg.workers - cfg.spawn} workers to join: ringswarm worker --url ${url} --token ${token}`);
      },
      control: (c) => (status = c.status),
      event: (e) => {
        switch (e.type) {
          case 'ready':
            readyAt ??= performance.now();
            break;
          case 'step':
            stepsDone++;
            lastStepMs = e.stepMs;
            break;
          case 'healed':
            progress.line(faultLine(e.fault));
            break;
          case 'straggler':
            progress.line(stragglerLine(e.straggler));
            break;
          default:
            break;
        }
        if (e.type !== 'step') draw();
      },
    },
    stop.signal,
  );
  if (ticker) clearInterval(ticker);
  stop.release();
  progress.done();

  let clean: { digest: string; how: string };
  if (report.interrupted) {
    digestThread.stop();
    clean = { digest: '', how: 'not computed: interrupted' };
  } else {
    if (progress.isTTY) progress.update('computing the fault-free digest...');
    const t = performance.now();
    const r = await digestThread.result;
    const waitedMs = performance.now() - t;
    progress.clear();
    clean = { digest: r.digest, how: `the fault-free one computed in closed form: ${seconds(r.cpuMs)} of CPU in a thread beside the run, ${seconds(waitedMs)} waited for after it` };
  }
  await new Promise<void>((resolve) => log.end(resolve));
  await writeJson(jsonPath, report);
  const files = [
    { label: 'report', path: jsonPath === '-' ? '(stdout)' : jsonPath },
    { label: 'log', path: paths.log },
    ...(cfg.htmlFile && existsSync(cfg.htmlFile) ? [{ label: 'html', path: `${cfg.htmlFile} (open it in a browser)` }] : []),
    ...(report.trace ? [{ label: 'trace', path: `${report.trace.file} (open it in https://ui.perfetto.dev)` }] : []),
  ];
  const verdict = demoSummary(report, clean, files);
  out.write(verdict.text);
  process.exitCode = report.interrupted ? stop.status() : verdict.ok ? 0 : 1;
}
