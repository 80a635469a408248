// The ringswarm CLI: every command but a launched worker (main.ts runs that one from the worker
// bundle). The modules a command needs beyond its flags are imported by its action: `ringswarm
// --help`, `status`, `inject` and `plan` load no coordinator, simulator, WebSocket or YAML code (a
// loaded machine took seconds to start a CLI that loaded them all).
import { Option, type Command } from 'commander';
import { BENCH_DEFAULTS, CHECKPOINT_COPIES, RUN_DEFAULTS, type BenchConfig, type RunConfig } from '../coordinator/config.js';
import type { RunOptions } from '../api/options.js';
import type { ExploreResult } from '../sim/explore.js';
import { MAX_SIM_WORKERS, MAX_WORKERS } from '../api/limits.js';
import { formatBytes } from '../protocol/units.js';
import { ADVERTISE_ENV } from '../api/launcher.js';
import { algoList, collective, dtype, flag01, host, intIn, kOfM, numberIn, rate, reduceOp, runAlgo, size, UsageError } from '../api/flags.js';
import { formatBenchTable, formatRunSummary } from '../coordinator/format.js';
import { traceLine } from '../coordinator/trace.js';
import { writeJson } from './json.js';
import { registerDemo } from './demo.js';
import { registerOperator } from './operator.js';
import { registerPlan } from './plan.js';
import { newProgram, runProgram } from './program.js';
import { Progress, StepEta } from './progress.js';
import { interruptible } from './interrupt.js';
import { workerCommand } from './worker-command.js';

const program = newProgram();

/** The flags `run` and `sim` share: the job, its faults and stragglers, the policies, the fabric. */
function jobOptions(cmd: Command, maxWorkers: number): Command {
  return cmd
    .option('-w, --workers <n>', 'workers in the ring', intIn(1, maxWorkers), RUN_DEFAULTS.workers)
    .option('-g, --cards-per-worker <n>', 'emulated cards per worker', intIn(1, 1 << 16), RUN_DEFAULTS.cardsPerWorker)
    .option('-s, --size <bytes>', 'gradient bytes per card (suffixes K, KiB, M, MiB, G, GiB)', size, RUN_DEFAULTS.bytesPerCard)
    .option('--dtype <type>', 'element type: f32, f64, i32', dtype, RUN_DEFAULTS.dtype)
    .option('--op <op>', 'reduction: sum, prod, min, max, avg', reduceOp, RUN_DEFAULTS.op)
    .option('--steps <n>', 'training steps', intIn(0), RUN_DEFAULTS.steps)
    .option('--compute-ms <ms>', 'emulated compute time per step', numberIn(0, 3_600_000), RUN_DEFAULTS.computeMs)
    .option('--chunk <bytes>', 'largest data frame payload (pipelining unit)', size, RUN_DEFAULTS.chunkBytes)
    .option('--seed <n>', 'the one seed: inputs, random faults, and (sim) the order of events', intIn(0, 2 ** 31 - 1), RUN_DEFAULTS.seed)
    .option('--timeout-ms <ms>', 'collective watchdog: an op in which no rank moves for this long is stuck', intIn(1, 86_400_000), RUN_DEFAULTS.timeoutMs)
    .option('--ready-timeout-ms <ms>', 'how long to wait for all workers to join and ring up', intIn(1, 3_600_000), RUN_DEFAULTS.readyTimeoutMs)
    .option('--scenario <file>', 'faults to inject, YAML or JSON (see README)')
    .option('--inject <fault>', "a fault in one word, repeatable: 'kill:rank=3:step=4:phase=reduce-scatter'", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .addOption(
      new Option('--on-failure <policy>', 'on a lost worker: restart it in its rank, hand its rank to a standby (--spares), shrink the ring without it, or abort the run')
        .choices(['restart', 'spare', 'shrink', 'abort'])
        .default(RUN_DEFAULTS.onFailure),
    )
    .option('--spares <n>', 'standby workers started at launch, for --on-failure spare (a new process is started when they run out)', intIn(0, maxWorkers), RUN_DEFAULTS.spares)
    .addOption(
      new Option('--on-straggler <action>', 'on a confirmed straggler: report it, evict a slow node (then --on-failure applies), or reroute the ring around a slow link')
        .choices(['report', 'evict', 'reroute'])
        .default(RUN_DEFAULTS.onStraggler),
    )
    .option('--straggler-threshold <x>', 'slow means this many times the median of the others', numberIn(1.01, 100), RUN_DEFAULTS.stragglerThreshold)
    .option('--straggler-persist <k/m>', 'and so in k of the last m steps besides the slowest one (a one-step spike never counts)', kOfM, RUN_DEFAULTS.stragglerPersist)
    .option('--max-restarts <n>', 'give up after this many restarts', intIn(0, 1_000_000), RUN_DEFAULTS.maxRestarts)
    .option('--checkpoint-every <k>', 'checkpoint card states every k steps, in memory with a copy on the next rank (0: never)', intIn(0), RUN_DEFAULTS.checkpointEvery)
    .option('--checkpoint-dir <dir>', 'also write checkpoints here, atomically (the disk tier)')
    .addOption(
      new Option('--checkpoint-copy <how>', "how a checkpoint's copy reaches the next rank: shm writes it once into shared memory (/dev/shm) and tells the next rank where, net sends it over the link; auto: shm when every worker is spawned here and no link is emulated")
        .choices([...CHECKPOINT_COPIES])
        .default(RUN_DEFAULTS.checkpointCopy),
    )
    .option('--heartbeat-ms <ms>', 'worker heartbeat interval', intIn(1, 60_000), RUN_DEFAULTS.heartbeatMs)
    .option('--heartbeat-timeout-ms <ms>', 'a worker silent this long is dead', intIn(1, 3_600_000), RUN_DEFAULTS.heartbeatDeadMs)
    .addOption(algoOption().argParser(runAlgo).default(RUN_DEFAULTS.algo))
    .option('--tuning <files...>', 'bench --algo ring,rd --json outputs: --algo auto then goes by the crossover measured for the ring size (else by the model)')
    .option('--link-latency-us <us>', 'emulated latency of every link between workers (run: Node timers make under 1000 about 1 ms)', numberIn(0, 60_000_000), 0)
    .option('--link-bandwidth <bytes>', 'emulated bandwidth per second of every link between workers, e.g. 100MiB (0: run: no cap; sim: this machine\'s)', rate, 0)
    .option('--intra-bandwidth <bytes>', 'emulated card-to-card bandwidth per second inside a worker, e.g. 10GiB (0: run: not emulated; sim: this machine\'s)', rate, 0)
    .option('--json <path|->', 'write the JSON report to a file, or - for stdout')
    .option('--trace <file>', 'write the timeline (Chrome trace-event JSON: open it in ui.perfetto.dev or chrome://tracing)')
    .option('--html <file>', 'write a self-contained HTML report (charts, rank x step heat map, faults, stragglers) at the end');
}

/** The job of `run` or `sim` from its flags, checked as one (by the API: the same checks for scripts). */
async function jobConfig(o: Record<string, any>, kind: 'run' | 'sim' = 'run'): Promise<RunConfig> {
  const { runConfig } = await import('../api/options.js');
  return runConfig(o as RunOptions, kind);
}

jobOptions(
  program.command('run').description('launch a swarm of worker processes and train for a number of steps, verifying every all-reduce'),
  MAX_WORKERS,
)
  .option('--port <n>', 'coordinator control port (0 = any free port)', intIn(0, 65535), RUN_DEFAULTS.port)
  .option('--metrics-port <n>', 'serve Prometheus metrics at http://127.0.0.1:<n>/metrics while the run lasts (0 = any free port)', intIn(0, 65535))
  .option('--ui-port <n>', 'serve a live dashboard at http://127.0.0.1:<n>/ while the run lasts (0 = any free port)', intIn(0, 65535))
  .option('--host <addr>', 'address to bind (0.0.0.0: every interface)', host, RUN_DEFAULTS.host)
  .option('--advertise <addr>', `the address workers and peers dial (default: $${ADVERTISE_ENV}, else --host; for 0.0.0.0 this host's first external IPv4)`, host)
  .option('--spawn <n>', 'workers to spawn here (default: all; 0: only the coordinator, a launcher starts the workers); the rest join with `ringswarm worker`', intIn(0, MAX_WORKERS))
  .option('--rejoin-timeout-ms <ms>', 'a lost worker this coordinator did not spawn: how long --on-failure restart waits for its launcher to bring one back in its rank', intIn(1, 86_400_000), RUN_DEFAULTS.rejoinTimeoutMs)
  .option('--token <token>', 'job token workers must present (default: random)')
  .option('--worker-nice <n|auto>', 'nice value of the spawned workers, 0-19: on a full machine the coordinator and `ringswarm status` still get the CPU (auto: 15 beyond 8 workers a core, else 0)', (v: string) => (v === 'auto' ? 'auto' : intIn(0, 19)(v)), 'auto')
  .addOption(checksumOption())
  .option('--what-if', 'run again with the same seed without the injected stragglers, and report what they cost')
  .action(async (o) => {
    const [{ runJob }, { checkCheckpointDir, checkMemory, checkPortFree }] = await Promise.all([import('../coordinator/run.js'), import('./preflight.js')]);
    const cfg = await jobConfig(o);
    checkMemory({ localWorkers: cfg.spawn + cfg.spares, ringSize: cfg.workers, cardsPerWorker: cfg.cardsPerWorker, bytesPerCard: cfg.bytesPerCard, checkpointEvery: cfg.checkpointEvery });
    await checkPortFree(cfg.host, cfg.port);
    if (cfg.checkpointDir) await checkCheckpointDir(cfg.checkpointDir);
    const toStdout = o.json === '-';
    const progress = new Progress(toStdout ? process.stderr : process.stdout);
    const stop = interruptible(progress);
    progress.line(
      `ringswarm run: ${cfg.workers} workers x ${cfg.cardsPerWorker} cards = ${cfg.workers * cfg.cardsPerWorker} cards, ` +
        `${formatBytes(cfg.bytesPerCard)} ${cfg.dtype} ${cfg.op} per card, ${cfg.steps} steps, seed ${cfg.seed}`,
    );
    const eta = new StepEta();
    const report = await runJob(
      cfg,
      {
        progress: (l, step) => progress.update(`${l}${eta.text(step)}`),
        log: (l) => progress.line(l),
        listening: (url, token) => {
          progress.line(`coordinator listening on ${url}`);
          progress.line(`live status: ringswarm status --url ${url} --token ${token}`);
          if (cfg.spawn < cfg.workers) {
            progress.line(`waiting for ${cfg.workers - cfg.spawn} workers to join: ringswarm worker --url ${url} --token ${token}`);
          }
        },
      },
      stop.signal,
    );
    if (o.whatIf && !report.interrupted) {
      // The same seed and flags without the injected stragglers: what they cost, measured, not estimated.
      progress.line('what-if: the same run without the injected stragglers');
      const cleanEta = new StepEta();
      const clean = await runJob({ ...cfg, stragglers: [], traceFile: null, htmlFile: null, uiPort: null }, { progress: (l, step) => progress.update(`${l}${cleanEta.text(step)}`), log: (l) => progress.line(l) }, stop.signal);
      report.whatIf = {
        wallMs: clean.wallMs,
        stepMsP50: clean.stepMs.p50,
        costMs: report.goodput.wallMs - clean.goodput.wallMs,
        slowdown: clean.stepMs.p50 > 0 ? Math.round((report.stepMs.p50 / clean.stepMs.p50) * 100) / 100 : null,
        sameDigest: clean.stateDigest === report.stateDigest,
      };
    }
    stop.release();
    progress.done();
    progress.out.write(formatRunSummary(report));
    if (report.trace) progress.out.write(traceLine(report.trace));
    if (o.json) await writeJson(o.json, report);
    process.exitCode = report.interrupted ? stop.status() : report.ok ? 0 : 1;
  });

jobOptions(
  program
    .command('sim')
    .description('the same job in one process on a virtual clock (the same coordinator and worker logic, the simulated fabric): deterministic, to 100,000 cards; or --explore N seeds'),
  MAX_SIM_WORKERS,
)
  .option('--explore <n>', 'draw N whole runs from seeds (shape, policies, faults at every point) and check each one\'s invariant', intIn(1, 1_000_000))
  .option('--seed-start <s>', 'with --explore: the first seed', intIn(0, 2 ** 31 - 1), 1)
  .option('--max-virtual-ms <ms>', 'a run not finished by this virtual time is stuck (default: from the steps and faults)', intIn(1, 2 ** 31 - 1))
  .action(async (o, cmd: Command) => {
    if (o.explore !== undefined) {
      const own = cmd.options.map((x) => x.attributeName()).filter((k) => !['explore', 'seedStart', 'json'].includes(k) && cmd.getOptionValueSource(k) === 'cli');
      if (own.length) throw new UsageError(`--explore draws every run from its seed: it takes only --seed-start and --json, not ${own.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}`);
      return explore(o.explore, o.seedStart, o.json);
    }
    const [cfg, { simJob }] = await Promise.all([jobConfig(o, 'sim'), import('../sim/sim.js')]);
    const toStdout = o.json === '-';
    const progress = new Progress(toStdout ? process.stderr : process.stdout);
    progress.line(
      `ringswarm sim: ${cfg.workers} workers x ${cfg.cardsPerWorker} cards = ${cfg.workers * cfg.cardsPerWorker} cards, ` +
        `${formatBytes(cfg.bytesPerCard)} ${cfg.dtype} ${cfg.op} per card, ${cfg.steps} steps, seed ${cfg.seed} (virtual time)`,
    );
    const eta = new StepEta();
    const report = await simJob(cfg, { progress: (l, step) => progress.update(`${l}${eta.text(step)}`), log: (l) => progress.line(l) }, { maxVirtualMs: o.maxVirtualMs });
    progress.done();
    progress.out.write(formatRunSummary(report));
    if (report.trace) progress.out.write(traceLine(report.trace));
    if (o.json) await writeJson(o.json, report);
    process.exitCode = report.ok ? 0 : 1;
  });

/** `sim --explore`: seeds one after the other, a line of progress each; a failure names its seed and replay, and sets status 1. */
async function explore(n: number, first: number, json: string | undefined): Promise<void> {
  const { exploreSeed } = await import('../sim/explore.js');
  const progress = new Progress(json === '-' ? process.stderr : process.stdout);
  const t0 = performance.now();
  const failed: ExploreResult[] = [];
  let events = 0;
  for (let seed = first; seed < first + n; seed++) {
    const r = await exploreSeed(seed);
    events += r.report.sim?.events ?? 0;
    if (!r.ok) {
      failed.push(r);
      progress.line(`seed ${seed} FAILED: ${r.why}\n  replay: ${r.replay}`);
    }
    const done = seed - first + 1;
    const perSeed = (performance.now() - t0) / done;
    progress.update(`explore: ${done}/${n} seeds, ${failed.length} failed, ${Math.round((n - done) * perSeed / 1000)} s left`);
  }
  const secs = (performance.now() - t0) / 1000;
  progress.done();
  progress.out.write(
    `${failed.length ? 'FAILED' : 'OK'}  explore: ${n} seeds from ${first}, ${failed.length} failed, in ${secs.toFixed(1)} s ` +
      `(${Math.round((n / secs) * 60)} seeds a minute, ${Math.round(events / secs)} events a second)\n` +
      failed.map((f) => `  seed ${f.seed}: ${f.why}\n    replay: ${f.replay}\n`).join(''),
  );
  if (json) await writeJson(json, { seeds: n, seedStart: first, failed: failed.map((f) => ({ seed: f.seed, why: f.why, replay: f.replay })), seconds: secs, events });
  process.exitCode = failed.length ? 1 : 0;
}

program
  .command('bench')
  .description('measure a collective over a range of sizes, like nccl-tests (all_reduce_perf and friends)')
  .option('-w, --workers <n>', 'worker processes in the ring', intIn(1, MAX_WORKERS), BENCH_DEFAULTS.workers)
  .option('-g, --cards-per-worker <n>', 'emulated cards per worker', intIn(1, 1 << 16), BENCH_DEFAULTS.cardsPerWorker)
  .addOption(new Option('--collective <name>', 'allreduce, reducescatter, allgather, broadcast').argParser(collective).default(BENCH_DEFAULTS.collective))
  .option('-b, --min-bytes <bytes>', 'smallest size per card', size, BENCH_DEFAULTS.minBytes)
  .option('-e, --max-bytes <bytes>', 'largest size per card', size, BENCH_DEFAULTS.maxBytes)
  .option('-f, --step-factor <n>', 'multiply the size by this much each row', numberIn(1.000001, 1 << 20), BENCH_DEFAULTS.stepFactor)
  .option('-n, --iters <n>', 'timed iterations per size', intIn(1, 1_000_000), BENCH_DEFAULTS.iters)
  .option('--warmup <n>', 'untimed iterations per size', intIn(0, 1_000_000), BENCH_DEFAULTS.warmup)
  .option('-o, --op <op>', 'reduction: sum, prod, min, max, avg', reduceOp, BENCH_DEFAULTS.op)
  .option('-d, --dtype <type>', 'element type: f32, f64, i32', dtype, BENCH_DEFAULTS.dtype)
  .option('-c, --check <0|1>', 'check results against the exact expected values', flag01, BENCH_DEFAULTS.check)
  .option('--chunk <bytes>', 'largest data frame payload', size, BENCH_DEFAULTS.chunkBytes)
  .option('--timeout-ms <ms>', 'collective watchdog', intIn(1, 86_400_000), BENCH_DEFAULTS.timeoutMs)
  .option('--port <n>', 'coordinator control port (0 = any free port)', intIn(0, 65535), BENCH_DEFAULTS.port)
  .addOption(checksumOption())
  .addOption(algoOption('all-reduce algorithms to measure one after the other, e.g. ring,rd (or all): the table then gives the crossover').argParser(algoList).default(BENCH_DEFAULTS.algos, 'ring'))
  .option('--link-latency-us <us>', 'emulated latency of every link between workers', numberIn(0, 60_000_000), 0)
  .option('--link-bandwidth <bytes>', 'emulated bandwidth per second of every link between workers (0: no cap)', rate, 0)
  .option('--intra-bandwidth <bytes>', 'emulated card-to-card bandwidth per second inside a worker (0: not emulated)', rate, 0)
  .option('--json <path|->', 'write { rows, avgBusbwGBps, crossover } to a file, or - for stdout')
  .option('--trace <file>', 'write the timeline (Chrome trace-event JSON: open it in ui.perfetto.dev or chrome://tracing)')
  .option('--html <file>', 'write a self-contained HTML report (bus bandwidth against size, with the model\'s prediction) at the end')
  .action(async (o) => {
    const [{ benchConfig }, { runBench }, { checkMemory, checkPortFree }] = await Promise.all([import('../api/index.js'), import('../coordinator/bench.js'), import('./preflight.js')]);
    const cfg: BenchConfig = {
      ...benchConfig({
        workers: o.workers,
        cardsPerWorker: o.cardsPerWorker,
        collective: o.collective,
        minBytes: o.minBytes,
        maxBytes: o.maxBytes,
        stepFactor: o.stepFactor,
        iters: o.iters,
        warmup: o.warmup,
        op: o.op,
        dtype: o.dtype,
        check: o.check,
        chunk: o.chunk,
        timeoutMs: o.timeoutMs,
        port: o.port,
        checksums: o.checksum === 'crc32c',
        algos: o.algo,
        linkLatencyUs: o.linkLatencyUs,
        linkBandwidth: o.linkBandwidth,
        intraBandwidth: o.intraBandwidth,
        trace: o.trace,
        html: o.html,
      }),
    };
    checkMemory({ localWorkers: cfg.workers, ringSize: cfg.workers, cardsPerWorker: cfg.cardsPerWorker, bytesPerCard: cfg.maxBytes, checkpointEvery: 0 }, '--max-bytes');
    await checkPortFree(cfg.host, cfg.port);
    const toStdout = o.json === '-';
    const out = toStdout ? process.stderr : process.stdout;
    const progress = new Progress(out, 'quiet');
    const report = await runBench(cfg, {
      log: (l) => progress.line(l),
      header: (l) => progress.line(l),
      row: (l) => progress.line(l),
      progress: (l) => progress.update(l),
    });
    progress.clear();
    progress.done();
    out.write(formatBenchTable(report, { headerOnly: false, rowsPrinted: true }));
    if (report.trace) out.write(traceLine(report.trace));
    if (o.json) await writeJson(o.json, { workers: cfg.workers, rows: report.rows, avgBusbwGBps: report.avgBusbwGBps, ...(report.crossover ? { crossover: report.crossover } : {}) });
    const wrong = report.rows.reduce((a, r) => a + r.wrong, 0);
    process.exitCode = report.error ? 1 : wrong > 0 ? 1 : 0;
  });

// Run here only without the worker bundle (a tsc-only build): main.ts runs the bundled one.
workerCommand(program).action(async (o) => (await import('./worker-start.js')).startWorker(o));

registerDemo(program);
registerPlan(program);
registerOperator(program);

function algoOption(what = 'all-reduce algorithm: ring (bandwidth-optimal), rd (recursive doubling: log2 n steps, for small sizes on many workers), tree (binomial reduce then broadcast: 2(n-1) frames, for many workers on few cores), or auto (the one the alpha-beta model predicts fastest, per epoch)'): Option {
  return new Option('--algo <name>', what);
}

function checksumOption(): Option {
  return new Option('--checksum <kind>', 'data frame checksum: crc32c, or none to measure what it costs').choices(['crc32c', 'none']).default('crc32c');
}

await runProgram(program);
