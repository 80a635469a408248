// `ringswarm plan`: what checkpointing costs at 1,000 to 100,000 cards (src/coordinator/plan.ts),
// from flags or from a run report.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { plan, referencePoints, YEAR_H, type PlanRow, type ReferencePoint } from '../coordinator/plan.js';
import { writeJson } from './json.js';
import { intIn, numberIn, UsageError } from '../api/flags.js';

export interface PlanFigure {
  ms: number;
  /** Where it came from: a flag, or the report field used. */
  from: string;
}

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description("project a job's MTBF, its optimal checkpoint interval (Young/Daly) and its effective training time to 1,000, 10,000 and 100,000 cards")
    .option('--cards <n>', "the job's cards, shown beside 1,000, 10,000 and 100,000 (default: the report's)", intIn(1, 100_000_000))
    .requiredOption('--card-mtbf-hours <h>', "one card's mean time between failures, hours", numberIn(0.001))
    .option('--checkpoint-ms <ms>', 'cost of one checkpoint: training stopped for this long', numberIn(0))
    .option('--recovery-ms <ms>', 'from a failure to training resumed (detection, restart, restore)', numberIn(0))
    .option('--step-ms <ms>', 'one training step: the interval is then a whole number of steps', numberIn(0.001))
    .option('--from-report <file>', 'take checkpoint and recovery times from a `ringswarm run --json` report (flags override it)')
    .option('--json <path|->', 'write { rows, references, inputs } to a file, or - for stdout')
    .action(async (o) => {
      const fromReport = o.fromReport ? await readReport(o.fromReport) : null;
      const cards = o.cards ?? fromReport?.cards;
      if (cards === undefined) throw new UsageError("required option '--cards <n>' not specified (or --from-report with a run report)");
      const checkpoint: PlanFigure | null = o.checkpointMs !== undefined ? { ms: o.checkpointMs, from: '--checkpoint-ms' } : (fromReport?.checkpoint ?? null);
      if (!checkpoint) throw new UsageError("required option '--checkpoint-ms <ms>' not specified (or --from-report with a run report)");
      const recovery: PlanFigure | null = o.recoveryMs !== undefined ? { ms: o.recoveryMs, from: '--recovery-ms' } : (fromReport?.recovery ?? null);
      if (!recovery) {
        throw new UsageError(
          fromReport
            ? `--from-report ${o.fromReport} has no recovered fault to take a recovery time from: pass --recovery-ms`
            : "required option '--recovery-ms <ms>' not specified (or --from-report with a run report that has a recovered fault)",
        );
      }
      const stepMs: number | null = o.stepMs ?? null;
      const rows = plan({ cards, cardMtbfHours: o.cardMtbfHours, checkpointS: checkpoint.ms / 1000, recoveryS: recovery.ms / 1000, stepS: stepMs === null ? null : stepMs / 1000 });
      const references = referencePoints(checkpoint.ms / 1000, recovery.ms / 1000);
      const out = o.json === '-' ? process.stderr : process.stdout;
      out.write(formatPlan({ rows, references, cardMtbfHours: o.cardMtbfHours, checkpoint, recovery, stepMs }));
      if (o.json) {
        await writeJson(o.json, {
          rows,
          references,
          inputs: { cards, cardMtbfHours: o.cardMtbfHours, checkpointMs: checkpoint.ms, checkpointFrom: checkpoint.from, recoveryMs: recovery.ms, recoveryFrom: recovery.from, stepMs },
        });
      }
    });
}

/** The report's cards, and its C and R with the fields they came from. */
async function readReport(file: string): Promise<{ cards: number | undefined; checkpoint: PlanFigure | null; recovery: PlanFigure | null }> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`--from-report ${file}: ${(e as Error).message}`);
  }
  // Its schema (zod) only for a report to read.
  const { figuresFromReport } = await import('../coordinator/plan-report.js');
  try {
    const f = figuresFromReport(value);
    const cards = (value as { cards?: unknown }).cards;
    const at = (p: PlanFigure | null) => p && { ms: p.ms, from: `${file} ${p.from}` };
    return { cards: Number.isSafeInteger(cards) && (cards as number) >= 1 ? (cards as number) : undefined, checkpoint: at(f.checkpoint), recovery: at(f.recovery) };
  } catch (e) {
    throw new UsageError(`--from-report ${file}: ${(e as Error).message}`);
  }
}

export function formatPlan(p: { rows: PlanRow[]; references: ReferencePoint[]; cardMtbfHours: number; checkpoint: PlanFigure; recovery: PlanFigure; stepMs: number | null }): string {
  const steps = p.stepMs !== null;
  const lines: string[] = [];
  lines.push(`ringswarm plan: card MTBF ${num(p.cardMtbfHours)} h (${num(p.cardMtbfHours / YEAR_H)} years, ${num(1 / p.cardMtbfHours)} failures per card-hour)`);
  lines.push(`  checkpoint ${num(p.checkpoint.ms)} ms  (${p.checkpoint.from})`);
  lines.push(`  recovery   ${num(p.recovery.ms)} ms  (${p.recovery.from})`);
  if (steps) lines.push(`  step       ${num(p.stepMs!)} ms  (intervals in whole steps)`);
  lines.push('');
  table(
    lines,
    ['cards', 'job MTBF h', 'failures/day', 'Young s', 'interval s', ...(steps ? ['steps', 'lost steps'] : []), 'lost/failure s', 'ETTR %'],
    p.rows.map((r) => [
      `${r.cards.toLocaleString('en-US')}${r.given ? ' *' : ''}`,
      num(r.jobMtbfHours),
      num(r.failuresPerDay),
      num(r.youngIntervalS),
      num(r.optimalIntervalS),
      ...(steps ? [r.intervalSteps!.toLocaleString('en-US'), num(r.lostStepsPerFailure!)] : []),
      num(r.lostWorkPerFailureS),
      percent(r.ettr),
    ]),
  );
  lines.push('  * = --cards. interval: work between checkpoints (Daly 2006); ETTR at that interval.');
  lines.push('');
  lines.push('public reference points, read with the same model (per-card MTBF = job MTBF x cards):');
  table(
    lines,
    ['', 'cards', 'job MTBF h', 'per-card MTBF h', 'years', 'failures/card-h', 'ETTR %'],
    p.references.map((r) => [r.label, r.cards.toLocaleString('en-US'), num(r.jobMtbfHours), num(r.perCardMtbfHours), num(r.perCardMtbfYears), num(r.failuresPerCardHour), percent(r.ettr)]),
  );
  lines.push('  ETTR with this checkpoint and recovery; the >= 99% row gives the job MTBF that 99% needs.');
  lines.push(`  sources: ${[...new Set(p.references.map((r) => r.source))].join('; ')}.`);
  return `${lines.join('\n')}\n`;
}

/** Right-aligned columns, the first left-aligned. */
function table(lines: string[], head: string[], body: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  for (const row of [head, ...body]) lines.push(`  ${row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')}`.trimEnd());
}

function percent(ratio: number): string {
  return (ratio * 100).toFixed(2);
}

/** Three significant figures; exponent form for the very small, whole numbers for the large. */
function num(v: number): string {
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(2);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return Number(v.toPrecision(3)).toLocaleString('en-US', { maximumFractionDigits: 20 });
}
