// C and R for the checkpoint planner (plan.ts) from a `ringswarm run --json` report. Apart from
// plan.ts, which is arithmetic only, so that `ringswarm plan` loads zod only for --from-report.
import { z } from 'zod';

/** What a run report says about C and R, and which fields it came from; null where it says nothing. */
export interface ReportFigures {
  checkpoint: { ms: number; from: string } | null;
  recovery: { ms: number; from: string } | null;
}

// Only the fields of RunReport (config.ts) the planner reads; the rest may be anything.
const ReportFields = z.object({
  computeMs: z.object({ p50: z.number().nonnegative() }),
  faults: z.array(z.object({ kind: z.string(), recoveredAfterMs: z.number().nonnegative().nullable() })),
});

/**
 * C and R from a `ringswarm run --json` report. R: the mean recoveredAfterMs (fault to training
 * resumed) of the faults that recovered. C: the report times no checkpoint on its own; a worker
 * takes its checkpoint between two all-reduces, inside what the report calls computeMs, so the
 * median computeMs is an upper bound (it also holds the emulated compute and the gradients).
 */
export function figuresFromReport(value: unknown): ReportFigures {
  const r = ReportFields.safeParse(value);
  if (!r.success) {
    throw new TypeError(`not a ringswarm run report: ${r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  }
  const recovered = r.data.faults.map((f) => f.recoveredAfterMs).filter((ms): ms is number => ms !== null);
  const mean = recovered.reduce((a, b) => a + b, 0) / recovered.length;
  return {
    checkpoint: { ms: r.data.computeMs.p50, from: 'computeMs.p50, an upper bound: the checkpoint copy is taken inside it, with the emulated compute' },
    recovery: recovered.length
      ? {
          ms: mean,
          from:
            recovered.length === 1
              ? 'recoveredAfterMs of its one recovered fault'
              : `mean recoveredAfterMs of ${recovered.length} recovered faults (${Math.min(...recovered)} to ${Math.max(...recovered)} ms)`,
        }
      : null,
  };
}
