// `ringswarm bench`: a collective over a range of sizes on a live swarm, printed like nccl-tests.
import { checksumKernel } from '../native/kernels.js';
import { elementBytes } from '../collective/dtypes.js';
import { busBandwidthFactor } from '../collective/index.js';
import { predictAllreduce, predictedCrossover } from '../collective/model.js';
import type { AllreduceAlgo } from '../collective/types.js';
import { isRingswarmError } from '../protocol/errors.js';
import { formatBytes } from '../protocol/units.js';
import type { WorkerMessage } from '../protocol/control.js';
import { BENCH_HEADER, BENCH_HEADER_ALGO, formatBenchRow } from './format.js';
import { RUN_DEFAULTS, type BenchConfig, type BenchReport, type BenchRow } from './config.js';
import { fabricModel, jobSpec } from './run.js';
import { Swarm } from './swarm.js';
import { median } from './stragglers.js';
import { COORDINATOR_PID, processName, rankPid, TraceRecorder } from './trace.js';
import { checkTraceFile, closeTrace } from './trace-file.js';

export interface BenchHooks {
  log(line: string): void;
  header(line: string): void;
  row(line: string): void;
  /** A live line: the size being measured, of how many (a terminal rewrites it in place). */
  progress?(line: string): void;
}

/** Sizes from min to max, multiplied by `factor` each time, each a whole number of elements. */
export function benchSizes(min: number, max: number, factor: number, elementSize: number): number[] {
  const out: number[] = [];
  for (let s = min; s <= max; s = Math.max(s + 1, Math.floor(s * factor))) {
    const aligned = Math.floor(s / elementSize) * elementSize;
    if (out[out.length - 1] !== aligned) out.push(aligned);
    if (out.length > 10_000) break;
  }
  return out;
}

/**
 * The smallest size from which `b` was measured no slower than `a` at every larger size too (null:
 * `a` was faster at the largest size, or there is no size both measured).
 */
export function measuredCrossover(rows: readonly BenchRow[], a: AllreduceAlgo, b: AllreduceAlgo): number | null {
  const time = (algo: AllreduceAlgo) => new Map(rows.filter((r) => r.algo === algo).map((r) => [r.bytes, r.timeUs]));
  const ta = time(a);
  const tb = time(b);
  const sizes = [...ta.keys()].filter((s) => tb.has(s)).sort((x, y) => x - y);
  let from: number | null = null;
  for (let i = sizes.length - 1; i >= 0; i--) {
    if (tb.get(sizes[i])! > ta.get(sizes[i])!) break;
    from = sizes[i];
  }
  return from;
}

export async function runBench(cfg: BenchConfig, hooks: BenchHooks): Promise<BenchReport> {
  const t0 = performance.now();
  const eb = elementBytes(cfg.dtype);
  const sizes = benchSizes(cfg.minBytes, cfg.maxBytes, cfg.stepFactor, eb);
  if (cfg.traceFile) await checkTraceFile(cfg.traceFile);
  const trace = cfg.traceFile ? new TraceRecorder({ t0, command: 'ringswarm bench' }) : null;
  const swarm = new Swarm({ workers: cfg.workers, host: cfg.host, port: cfg.port, readyTimeoutMs: RUN_DEFAULTS.readyTimeoutMs, log: hooks.log });
  const rows: BenchRow[] = [];
  const partial = new Map<number, { n: number; timeUs: number; wrong: number; count: number; iters: number[][] }>();
  let failure: string | undefined;
  let ready = 0;
  let done = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  let resolveReady!: () => void;
  const allReady = new Promise<void>((r) => (resolveReady = r));
  const fail = (why: string) => {
    failure ??= why;
    finish();
  };
  const factor = busBandwidthFactor(cfg.collective, cfg.workers);
  const fabric = fabricModel(cfg.link);
  const allreduce = cfg.collective === 'allreduce';
  // Other collectives have one algorithm (the ring): measured once.
  const algos: AllreduceAlgo[] = allreduce ? [...new Set(cfg.algos)] : ['ring'];
  let algo: AllreduceAlgo = algos[0];
  let algoDone: () => void = () => {};
  // Rows measured so far, of every size under every algorithm: the live line names the next one.
  const total = sizes.length * algos.length;
  let measured = 0;
  const showNext = () => {
    if (measured >= total) return;
    const elapsed = Math.round((performance.now() - t0) / 1000);
    const next = algos[Math.floor(measured / sizes.length)]!;
    hooks.progress?.(`bench: size ${measured + 1}/${total}: ${formatBytes(sizes[measured % sizes.length]!)}${algos.length > 1 ? ` ${next}` : ''}, ${elapsed} s elapsed`);
  };

  swarm.onEvent((e) => {
    if (e.type === 'lost') return fail(e.why);
    const msg = e.msg;
    if (trace) traceBench(trace, e.member, msg, algo, sizes);
    switch (msg.type) {
      case 'ready':
        if (++ready === cfg.workers) resolveReady();
        return;
      case 'bench-result': {
        const p = partial.get(msg.bytes) ?? { n: 0, timeUs: 0, wrong: 0, count: msg.count, iters: [] };
        p.n++;
        p.timeUs = Math.max(p.timeUs, msg.timeUs);
        if (msg.itersUs) p.iters.push(msg.itersUs);
        p.wrong += msg.wrong;
        partial.set(msg.bytes, p);
        if (p.n === cfg.workers) {
          partial.delete(msg.bytes);
          // nccl-tests: algbw = S / t, with S the per-card (per-rank) buffer size.
          const algbw = p.timeUs > 0 ? msg.bytes / (p.timeUs * 1e-6) / 1e9 : 0;
          const row: BenchRow = {
            bytes: msg.bytes,
            count: p.count,
            type: cfg.dtype,
            redop: cfg.op,
            timeUs: p.timeUs,
            ...medianOfSlowest(p.iters, cfg.workers),
            algbwGBps: algbw,
            busbwGBps: algbw * factor,
            wrong: p.wrong,
          };
          if (allreduce) {
            row.algo = algo;
            row.predictedUs = Math.round(predictAllreduce(algo, cfg.workers, cfg.cardsPerWorker, msg.bytes, fabric).totalUs * 10) / 10;
          }
          rows.push(row);
          hooks.row(formatBenchRow(row));
          measured++;
          showNext();
        }
        return;
      }
      case 'done':
        if (++done === cfg.workers) algoDone();
        return;
      case 'failed':
        return fail(`rank ${e.member.rank}: ${msg.code}: ${msg.message}`);
      default:
        return;
    }
  });

  let startupMs = 0;
  try {
    await swarm.listen();
    swarm.spawnWorkers();
    const job = jobSpec({
      ...RUN_DEFAULTS,
      workers: cfg.workers,
      cardsPerWorker: cfg.cardsPerWorker,
      bytesPerCard: 0,
      dtype: cfg.dtype,
      op: cfg.op,
      steps: 0,
      chunkBytes: cfg.chunkBytes,
      seed: cfg.seed,
      timeoutMs: cfg.timeoutMs,
      checksums: cfg.checksums,
      traceFile: cfg.traceFile,
    });
    const joined = await Promise.race([
      swarm.rendezvous(cfg.cardsPerWorker).then(() => {
        swarm.assign(job, algo, algos.some((a) => a !== 'ring'));
        return true;
      }),
      finished.then(() => false),
    ]);
    if (joined) await Promise.race([allReady, finished]);
    if (!failure) {
      startupMs = performance.now() - t0;
      hooks.header(
        `# ringswarm bench: ${cfg.collective}, ${cfg.workers} workers x ${cfg.cardsPerWorker} cards, ${cfg.dtype} ${cfg.op}, ` +
          `${cfg.iters} iters, ${cfg.warmup} warmup, check ${cfg.check ? 1 : 0}, checksum ${cfg.checksums ? `crc32c by ${checksumKernel}` : 'none'} (ready in ${Math.round(startupMs)} ms)`,
      );
      hooks.header(allreduce ? BENCH_HEADER_ALGO : BENCH_HEADER);
      // One algorithm after the other over all sizes, on the same swarm and links.
      for (const a of algos) {
        algo = a;
        done = 0;
        // The first size of the next algorithm was announced with the last row of this one.
        if (a === algos[0]) showNext();
        const over = new Promise<void>((r) => (algoDone = r));
        swarm.broadcast({ type: 'bench', epoch: swarm.epoch, spec: { collective: cfg.collective, sizes, iters: cfg.iters, warmup: cfg.warmup, check: cfg.check, algo: a } });
        await Promise.race([over, finished]);
        if (failure) break;
      }
      finish();
    }
  } catch (e) {
    failure ??= isRingswarmError(e) ? `${e.code}: ${e.message}` : String(e);
  }
  if (failure) await swarm.kill();
  else await swarm.close('bench finished');
  const avg = rows.length ? rows.reduce((a, r) => a + r.busbwGBps, 0) / rows.length : 0;
  const report: BenchReport = { collective: cfg.collective, workers: cfg.workers, cardsPerWorker: cfg.cardsPerWorker, rows, avgBusbwGBps: avg, startupMs: Math.round(startupMs) };
  if (algos.includes('ring') && algos.includes('rd')) {
    report.crossover = { measuredBytes: measuredCrossover(rows, 'rd', 'ring'), predictedBytes: predictedCrossover(cfg.workers, fabric) };
  }
  if (failure) report.error = failure;
  if (trace && cfg.traceFile) report.trace = await closeTrace(cfg.traceFile, trace, { collective: cfg.collective, workers: cfg.workers, algos, sizes: sizes.length, ...(failure ? { error: failure } : {}) }, hooks.log);
  if (cfg.htmlFile) await (await import('./html/index.js')).writeBenchHtml(cfg.htmlFile, report, hooks.log);
  return report;
}

/** --trace: a bench worker's message into the trace (its clock readings, its spans by size and algorithm, a counter per size). */
function traceBench(trace: TraceRecorder, m: { workerId: string; pid: number; rank: number; helloClock?: number; joinedAt: number }, msg: WorkerMessage, algo: AllreduceAlgo, sizes: readonly number[]): void {
  const now = performance.now();
  if (m.rank < 0) return;
  const pid = rankPid(m.rank);
  if (trace.offsetOf(m.workerId) === undefined) {
    trace.clockReading(m.workerId, m.helloClock, m.joinedAt);
    trace.nameProcess(pid, processName(m.rank, [m.pid]));
  }
  if (msg.type === 'heartbeat') trace.clockReading(m.workerId, msg.clock, now);
  if (msg.type !== 'bench-result') return;
  trace.clockReading(m.workerId, msg.clock, now);
  const step = Math.max(0, sizes.indexOf(msg.bytes));
  const key = `${algo}:${msg.bytes}`;
  if (msg.spans) trace.spans(m.workerId, pid, msg.epoch, msg.spans, () => ({ key, step }), msg.spansDropped);
  if (msg.clock !== undefined) trace.counter(pid, 'time us', msg.clock, { [algo]: msg.timeUs }, key, step, m.workerId);
  if (m.rank === 0) trace.counter(COORDINATOR_PID, 'bytes', now, { bytes: msg.bytes }, key, step);
}

/**
 * `{ medianUs }`: the median over iterations of the slowest rank's time in each, when every rank
 * sent its iteration times (the same number of them); else nothing.
 */
export function medianOfSlowest(iters: readonly (readonly number[])[], ranks: number): { medianUs?: number } {
  const n = iters[0]?.length ?? 0;
  if (iters.length !== ranks || n === 0 || iters.some((x) => x.length !== n)) return {};
  return { medianUs: median(Array.from({ length: n }, (_, i) => Math.max(...iters.map((x) => x[i])))) };
}
