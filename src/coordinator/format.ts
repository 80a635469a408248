// What a person reads: the run summary and the nccl-tests-style bench table. Pure text.
import { formatBytes } from '../protocol/units.js';
import type { BenchReport, LinkSpec, Quantiles, RunReport } from './config.js';

function describeLink(l: LinkSpec): string {
  const parts: string[] = [];
  if (l.latencyUs) parts.push(`${l.latencyUs} us per link`);
  if (l.bandwidth) parts.push(`${formatBytes(l.bandwidth)}/s per link`);
  if (l.intraBandwidth) parts.push(`${formatBytes(l.intraBandwidth)}/s card to card`);
  return parts.join(', ');
}

const q = (x: Quantiles) => `p50 ${x.p50.toFixed(2)}  p90 ${x.p90.toFixed(2)}  p99 ${x.p99.toFixed(2)}  max ${x.max.toFixed(2)} ms`;

export function formatRunSummary(r: RunReport): string {
  const lines = [
    '',
    `${r.ok ? 'OK' : 'FAILED'}  ${r.workers} workers x ${r.cardsPerWorker} cards = ${r.cards} cards, ${formatBytes(r.bytesPerCard)} ${r.dtype} ${r.op} per card, seed ${r.seed}`,
  ];
  if (r.error) lines.push(`  error:      ${r.error}`);
  lines.push(
    `  steps:      ${r.stepsCompleted}/${r.stepsRequested} completed, ${r.wrong} wrong elements`,
    `  digest:     ${r.stateDigest ?? '(none: run did not finish)'}`,
    `  startup:    ${r.startupMs} ms to ready; wall ${r.wallMs} ms`,
    `  step:       ${q(r.stepMs)}`,
    `  all-reduce: ${q(r.allreduceMs)}`,
    `  bandwidth:  algbw ${r.algbwGBps.toFixed(3)} GB/s, busbw ${r.busbwGBps.toFixed(3)} GB/s (median step)`,
    `  algorithm:  ${r.algo.join(', then ') || '-'}; alpha-beta model ${r.model.predictedAllreduceMs} ms per all-reduce` +
      ` (${r.model.predictedInterMs} between workers + ${r.model.predictedIntraMs} inside), measured ${r.model.measuredAllreduceMs.toFixed(2)} ms` +
      (r.model.ratio !== null ? ` (${r.model.ratio}x)` : '') +
      (r.link.latencyUs || r.link.bandwidth || r.link.intraBandwidth ? `; fabric: ${describeLink(r.link)}` : ''),
    `  memory:     coordinator ${r.memory.coordinatorRssMB} MB, worker max ${r.memory.workerRssMBMax} MB, workers total ${r.memory.workerRssMBTotal} MB RSS` +
      (r.memory.workerPssMBTotal !== null ? ` (${r.memory.workerPssMBTotal} MB PSS: shared pages counted once)` : '') +
      (r.memory.checkpointSlotsMB !== null ? `; checkpoint slots ${r.memory.checkpointSlotsMB} MB in shared memory` : ''),
    `  coordinator: ${(r.coordinatorCpu.ms / 1000).toFixed(2)} s of CPU, ${(r.coordinatorCpu.share * 100).toFixed(1)}% of the wall time`,
    `  control:    ${r.controlUrl}${r.rejectedConnections ? `, ${r.rejectedConnections} connections refused` : ''}`,
  );
  for (const s of r.stragglers) {
    const what = s.kind === 'node' ? `rank ${s.rank}` : `link ${s.link![0]}->${s.link![1]}`;
    lines.push(
      `  straggler:  ${what}${s.injected ? '' : ' (not injected)'}: first seen at step ${s.firstSeenStep}, confirmed at step ${s.detectedAtStep}, ` +
        `score ${s.score}, step time ${s.slowdown ?? '?'}x the clean baseline; ${s.action}` +
        (s.action !== 'report' ? ` (step ${s.stepMsBefore ?? '?'} ms before, ${s.stepMsAfter ?? '?'} ms after)` : ''),
    );
  }
  if (r.whatIf) {
    lines.push(
      `  what-if:    without the injected stragglers: step p50 ${r.whatIf.stepMsP50.toFixed(2)} ms (they made it ${r.whatIf.slowdown ?? '?'}x), ` +
        `training ${r.whatIf.costMs} ms shorter; digest ${r.whatIf.sameDigest ? 'the same' : 'DIFFERENT'}`,
    );
  }
  if (r.faults.length || r.epochs.length > 1) {
    lines.push(`  faults:     ${r.faults.length}, restarts ${r.restarts}, epochs ${r.epochs.length}`);
    for (const f of r.faults) {
      const where = f.link ? `link ${f.link[0]}->${f.link[1]}` : `rank ${f.rank}`;
      const at = f.atStep === null ? '' : ` at step ${f.atStep}${f.phase ? ` ${f.phase}` : ''}`;
      lines.push(
        `    ${f.injected ? '' : '(from outside) '}${f.kind} ${where}${at}: ` +
          (f.detectedBy
            ? // A fault from outside has no known start: its detection time is not given, not guessed.
              `detected by ${f.detectedBy}${f.detectedAfterMs !== null ? ` after ${f.detectedAfterMs} ms` : ''}, located ${f.located}; ${f.action}` +
              (f.restoredFrom ? `, restored from ${f.restoredFrom}` : '') +
              (f.recoveredAfterMs !== null ? `, training resumed ${f.recoveredAfterMs} ms after ${f.injected ? 'the fault' : 'its detection'}, ${f.lostSteps} steps lost` : '')
            : f.injected && !f.struck
              ? `did not strike: ${f.note ?? 'no reason known'}`
              : 'struck, not detected (it did no harm the detectors could see)'),
      );
    }
    const g = r.goodput;
    lines.push(`  goodput:    ${(g.ratio * 100).toFixed(1)}% (${g.productiveMs} ms productive of ${g.wallMs} ms), ${g.lostSteps} steps lost, ${g.recomputedSteps} recomputed`);
  }
  // Jitter is noise, not a straggler to find: it is never listed as missed.
  const missed = (r.injectedStragglers ?? []).filter((x) => x.kind !== 'jitter' && (!x.struck || x.detectedAtStep === null));
  if (missed.length) lines.push('  injected stragglers missed:');
  for (const s of missed) {
    const where = s.link ? `link ${s.link[0]}->${s.link[1]}` : s.rank !== undefined ? `rank ${s.rank}` : 'every rank';
    lines.push(`    injected ${s.kind} ${where}: ${s.struck ? `struck, not detected${s.note ? ` (${s.note})` : ''}` : `did not strike: ${s.note ?? 'no reason known'}`}`);
  }
  lines.push('');
  return lines.join('\n');
}

export const BENCH_HEADER =
  '#       size         count   type   redop    time(us)  algbw(GB/s)  busbw(GB/s)  #wrong';

/** The all-reduce table: which algorithm, and the alpha-beta model's time beside the measured one. */
export const BENCH_HEADER_ALGO = `${BENCH_HEADER}  algo  model(us)  meas/model`;

export function formatBenchRow(r: BenchReport['rows'][number]): string {
  const base =
    `${String(r.bytes).padStart(12)}  ${String(r.count).padStart(12)}  ${r.type.padStart(5)}  ${r.redop.padStart(6)}  ` +
    `${r.timeUs.toFixed(1).padStart(10)}  ${r.algbwGBps.toFixed(3).padStart(11)}  ${r.busbwGBps.toFixed(3).padStart(11)}  ${String(r.wrong).padStart(6)}`;
  if (!r.algo || r.predictedUs === undefined) return base;
  const ratio = r.predictedUs > 0 ? (r.timeUs / r.predictedUs).toFixed(2) : '-';
  return `${base}  ${r.algo.padStart(4)}  ${r.predictedUs.toFixed(1).padStart(9)}  ${ratio.padStart(10)}`;
}

/** The closing lines of a bench (rows are printed live as they complete). */
export function formatBenchTable(r: BenchReport, o: { headerOnly: boolean; rowsPrinted: boolean }): string {
  const lines: string[] = [];
  if (!o.rowsPrinted) {
    lines.push(BENCH_HEADER, ...r.rows.map(formatBenchRow));
  }
  if (!o.headerOnly) {
    if (r.error) lines.push(`# error: ${r.error}`);
    lines.push(`# Out of bounds values : ${r.rows.reduce((a, x) => a + x.wrong, 0)} ${r.rows.some((x) => x.wrong > 0) ? 'ERROR' : 'OK'}`);
    lines.push(`# Avg bus bandwidth    : ${r.avgBusbwGBps.toFixed(3)}`);
    if (r.crossover) {
      const { measuredBytes: m, predictedBytes: p } = r.crossover;
      lines.push(
        `# Crossover rd -> ring : measured ${m === null ? 'above the largest size' : formatBytes(m)}, ` +
          `predicted ${p === null ? 'none (the ring at every size)' : formatBytes(p)} (--algo auto goes by the prediction)`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
