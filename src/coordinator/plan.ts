// Checkpoint planning beyond one machine: pure arithmetic, no I/O, every figure a plain object.
//
// Model: cards fail independently with exponential lifetimes, and any card's failure stops the
// job (a ring all-reduce needs every rank), so the job's failure rate is the sum of the cards':
//   job MTBF  M = H / N            (H = one card's MTBF, N = cards)
// The job writes a checkpoint costing C seconds after every τ seconds of work; after a failure it
// spends R seconds coming back (detection, restart, restore), then redoes the work since the last
// checkpoint.
//
// Optimal interval τ (work between checkpoints, C not included):
//   Young (1974), "A first order approximation to the optimum checkpoint interval":
//     τ = sqrt(2 C M)
//   Daly (2006), "A higher order estimate of the optimum checkpoint interval for restart dumps"
//   (Future Generation Computer Systems 22(3), 303-312):
//     τ = sqrt(2 C M) · [1 + (1/3)·sqrt(C / 2M) + (1/9)·(C / 2M)] − C    for C < 2M
//     τ = M                                                            for C ≥ 2M
// Expected wall time for T_s seconds of work (Daly 2006, the same paper; failures during
// checkpoints and recoveries included, T_s ≫ τ):
//   T_w = M · e^{R/M} · (e^{(τ + C)/M} − 1) · T_s / τ
// so the effective training time ratio is
//   ETTR = T_s / T_w = τ / (M · e^{R/M} · (e^{(τ + C)/M} − 1))
// which is below 1 for every τ > 0 (e^x − 1 > x), and falls to 0 as R or C grow against M.

/** The scales every plan shows: the "10,000-card" class and a decade either side. */
export const PLAN_SCALES: readonly number[] = [1_000, 10_000, 100_000];

export const HOUR_S = 3600;
export const YEAR_H = 24 * 365.25;

export interface PlanInput {
  /** N: the job's cards (shown beside PLAN_SCALES, marked). */
  cards: number;
  /** H: one card's mean time between failures, hours. */
  cardMtbfHours: number;
  /** C: one checkpoint's cost, seconds of stopped training. */
  checkpointS: number;
  /** R: from a failure to training resumed, seconds. */
  recoveryS: number;
  /** S: one training step, seconds; the interval is then a whole number of steps. */
  stepS?: number | null;
}

export interface PlanRow {
  cards: number;
  /** Whether this row is the plan's own card count (the rest are PLAN_SCALES). */
  given: boolean;
  jobMtbfHours: number;
  failuresPerDay: number;
  /** Young's first-order interval, seconds of work. */
  youngIntervalS: number;
  /** Daly's higher-order interval, seconds of work; with a step time, the best whole number of steps. */
  optimalIntervalS: number;
  /** With a step time: checkpoint every this many steps (`ringswarm run --checkpoint-every`). */
  intervalSteps: number | null;
  /** Expected effective training time ratio at optimalIntervalS, 0 to 1. */
  ettr: number;
  /** Work redone after one failure, on average: seconds, and steps when the step time is known. */
  lostWorkPerFailureS: number;
  lostStepsPerFailure: number | null;
}

export interface PerCardRate {
  perCardMtbfHours: number;
  perCardMtbfYears: number;
  failuresPerCardHour: number;
}

export interface ReferencePoint extends PerCardRate {
  /** Who says it, and what; `label` is the short form for a table. */
  source: string;
  claim: string;
  label: string;
  cards: number;
  jobMtbfHours: number;
  /** ETTR at this job MTBF with the plan's checkpoint and recovery costs, at Daly's interval. */
  ettr: number;
}

/** Job MTBF in hours: N independent cards, each of MTBF H hours, any one of which stops the job. */
export function jobMtbfHours(cardMtbfHours: number, cards: number): number {
  positive('cardMtbfHours', cardMtbfHours);
  positive('cards', cards);
  return cardMtbfHours / cards;
}

/** The per-card failure rate a job MTBF at a scale implies (the same model read backwards). */
export function perCardRate(jobMtbfH: number, cards: number): PerCardRate {
  positive('jobMtbfHours', jobMtbfH);
  positive('cards', cards);
  const h = jobMtbfH * cards;
  return { perCardMtbfHours: h, perCardMtbfYears: h / YEAR_H, failuresPerCardHour: 1 / h };
}

/** Young (1974): τ = sqrt(2 C M). Seconds in, seconds out. */
export function youngIntervalS(checkpointS: number, mtbfS: number): number {
  nonNegative('checkpointS', checkpointS);
  positive('mtbfS', mtbfS);
  return Math.sqrt(2 * checkpointS * mtbfS);
}

/** Daly (2006): Young's interval corrected to higher order; M itself once C ≥ 2M. */
export function dalyIntervalS(checkpointS: number, mtbfS: number): number {
  nonNegative('checkpointS', checkpointS);
  positive('mtbfS', mtbfS);
  if (checkpointS >= 2 * mtbfS) return mtbfS;
  const x = checkpointS / (2 * mtbfS);
  return Math.sqrt(2 * checkpointS * mtbfS) * (1 + Math.sqrt(x) / 3 + x / 9) - checkpointS;
}

/** Daly's (2006) expected wall time read as a ratio: τ / (M e^{R/M} (e^{(τ+C)/M} − 1)), clamped to [0, 1]. */
export function expectedEttr(intervalS: number, checkpointS: number, recoveryS: number, mtbfS: number): number {
  nonNegative('intervalS', intervalS);
  nonNegative('checkpointS', checkpointS);
  nonNegative('recoveryS', recoveryS);
  positive('mtbfS', mtbfS);
  const recoveryFactor = Math.exp(-recoveryS / mtbfS);
  if (intervalS === 0) {
    // Checkpointing continuously: free checkpoints lose only the recoveries (the limit τ → 0); costly ones make no progress.
    return checkpointS === 0 ? recoveryFactor : 0;
  }
  const r = (intervalS / (mtbfS * Math.expm1((intervalS + checkpointS) / mtbfS))) * recoveryFactor;
  return Number.isFinite(r) ? Math.min(1, Math.max(0, r)) : 0;
}

/**
 * Work redone after one failure, on average: the time from the last checkpoint's start to the
 * failure, for an exponential failure known to fall within one segment of T = τ + C seconds:
 * M − T / (e^{T/M} − 1), about T/2 when T ≪ M.
 */
export function lostWorkPerFailureS(intervalS: number, checkpointS: number, mtbfS: number): number {
  nonNegative('intervalS', intervalS);
  nonNegative('checkpointS', checkpointS);
  positive('mtbfS', mtbfS);
  const t = intervalS + checkpointS;
  const x = t / mtbfS;
  // The series avoids the cancellation of M − (nearly M) when the segment is tiny against M.
  if (x < 1e-4) return t / 2 - (t * x) / 12;
  return mtbfS - t / Math.expm1(x);
}

/** ETTR at Daly's interval for a job MTBF of `mtbfS` seconds. */
export function ettrAtDaly(checkpointS: number, recoveryS: number, mtbfS: number): number {
  return expectedEttr(dalyIntervalS(checkpointS, mtbfS), checkpointS, recoveryS, mtbfS);
}

/**
 * The whole number of steps (at least one) between checkpoints that gives the best ETTR: the
 * better of the two step counts around Daly's interval.
 */
export function intervalInSteps(checkpointS: number, recoveryS: number, mtbfS: number, stepS: number): number {
  positive('stepS', stepS);
  const k = dalyIntervalS(checkpointS, mtbfS) / stepS;
  const lo = Math.max(1, Math.floor(k));
  const hi = Math.max(1, Math.ceil(k));
  return expectedEttr(hi * stepS, checkpointS, recoveryS, mtbfS) > expectedEttr(lo * stepS, checkpointS, recoveryS, mtbfS) ? hi : lo;
}

/** One row: the job at `cards` cards. */
export function planRow(input: Omit<PlanInput, 'cards'>, cards: number, given: boolean): PlanRow {
  const { checkpointS: c, recoveryS: r } = input;
  const stepS = input.stepS ?? null;
  const mH = jobMtbfHours(input.cardMtbfHours, cards);
  const m = mH * HOUR_S;
  const steps = stepS === null ? null : intervalInSteps(c, r, m, stepS);
  const tau = steps === null ? dalyIntervalS(c, m) : steps * stepS!;
  const lost = lostWorkPerFailureS(tau, c, m);
  return {
    cards,
    given,
    jobMtbfHours: mH,
    failuresPerDay: 24 / mH,
    youngIntervalS: youngIntervalS(c, m),
    optimalIntervalS: tau,
    intervalSteps: steps,
    ettr: expectedEttr(tau, c, r, m),
    lostWorkPerFailureS: lost,
    lostStepsPerFailure: stepS === null ? null : lost / stepS,
  };
}

/** Rows at the plan's own card count and at PLAN_SCALES, each once, fewest cards first. */
export function plan(input: PlanInput): PlanRow[] {
  if (!Number.isSafeInteger(input.cards) || input.cards < 1) throw new RangeError(`cards must be a whole number from 1, not ${input.cards}`);
  if (input.stepS !== undefined && input.stepS !== null) positive('stepS', input.stepS);
  const scales = [...new Set([input.cards, ...PLAN_SCALES])].sort((a, b) => a - b);
  return scales.map((n) => planRow(input, n, n === input.cards));
}

/**
 * The job MTBF, seconds, at which ETTR at Daly's interval reaches `target`, by bisection on a
 * log scale (ETTR rises with M: fewer failures, each costing the same). 0 when even M → 0 gives it
 * (nothing to lose: C = R = 0).
 */
export function jobMtbfForEttrS(target: number, checkpointS: number, recoveryS: number): number {
  if (!(target > 0 && target < 1)) throw new RangeError(`target ETTR must be between 0 and 1, not ${target}`);
  nonNegative('checkpointS', checkpointS);
  nonNegative('recoveryS', recoveryS);
  if (checkpointS === 0 && recoveryS === 0) return 0;
  const ok = (m: number) => ettrAtDaly(checkpointS, recoveryS, m) >= target;
  let lo = 1e-9 * Math.max(checkpointS, recoveryS);
  let hi = Math.max(checkpointS, recoveryS);
  while (ok(lo)) lo /= 2;
  while (!ok(hi)) hi *= 2;
  for (let i = 0; i < 200 && hi / lo > 1 + 1e-12; i++) {
    const mid = Math.sqrt(lo * hi);
    if (ok(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The public figures to set a plan against, and the per-card failure rate each implies. */
export function referencePoints(checkpointS: number, recoveryS: number): ReferencePoint[] {
  const meta = 'Kokolis et al. (Meta), "Revisiting Reliability in Large-Scale Machine Learning Research Clusters", 2024';
  const point = (source: string, label: string, claim: string, cards: number, mH: number, ettr?: number): ReferencePoint => ({
    source,
    claim,
    label,
    cards,
    jobMtbfHours: mH,
    ...perCardRate(mH, cards),
    ettr: ettr ?? ettrAtDaly(checkpointS, recoveryS, mH * HOUR_S),
  });
  const needH = jobMtbfForEttrS(0.99, checkpointS, recoveryS) / HOUR_S;
  return [
    point(meta, 'Meta job MTTF', 'job MTTF 7.9 h at 1,024 GPUs', 1_024, 7.9),
    point(meta, 'Meta job MTTF', 'job MTTF 1.8 h at 16,384 GPUs', 16_384, 1.8),
    point('vendor claim', 'vendor 15-day MTBF', 'job MTBF 15 days at 10,000 cards', 10_000, 15 * 24),
    // Needed, not claimed: the job MTBF that this plan's C and R turn into 99% effective time.
    ...(needH > 0
      ? [point('vendor claim', 'vendor >= 99% ETTR', '>= 99% weekly effective training time at 10,000 cards (the job MTBF this needs with the plan\'s checkpoint and recovery times)', 10_000, needH, 0.99)]
      : []),
  ];
}

function positive(name: string, v: number): void {
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be a positive number, not ${v}`);
}

function nonNegative(name: string, v: number): void {
  if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be a number from 0, not ${v}`);
}
