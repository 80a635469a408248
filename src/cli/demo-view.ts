// What `ringswarm demo` shows, as pure text: the live line of rank cells (from a JobStatus), a line
// per fault healed and per straggler named, and the closing summary with its verdict (from the
// RunReport and the fault-free digest). No I/O, no clock: times come in as values.
import type { FaultReport, RunReport, StragglerReport } from '../coordinator/config.js';
import type { JobStatus, RankState } from '../protocol/operator.js';
import { formatBytes } from '../protocol/units.js';

/** One character a rank, and its colour on a terminal (SGR code). */
export const STATE_CELL: Record<RankState, { glyph: string; sgr: string }> = {
  joining: { glyph: '.', sgr: '2' },
  ringing: { glyph: '~', sgr: '34' },
  training: { glyph: '=', sgr: '32' },
  stalled: { glyph: '!', sgr: '33' },
  silent: { glyph: '?', sgr: '33' },
  frozen: { glyph: 'Z', sgr: '36' },
  recovering: { glyph: 'r', sgr: '35' },
  done: { glyph: '+', sgr: '2' },
  dead: { glyph: 'X', sgr: '31;1' },
};

/** When a cell stands for several ranks, it shows the one most worth seeing. */
const SEVERITY: readonly RankState[] = ['done', 'training', 'joining', 'ringing', 'recovering', 'stalled', 'silent', 'frozen', 'dead'];

export const LEGEND = (['training', 'ringing', 'stalled', 'silent', 'frozen', 'dead', 'recovering', 'done'] as const).map((s) => `${STATE_CELL[s].glyph} ${s}`).join('  ');

export interface LiveFigures {
  /** The last counted step's time (the slowest rank's), ms; null before the first. */
  stepMs: number | null;
  /** Seconds left at the pace so far; null when unknown. */
  etaS: number | null;
  color: boolean;
  /** At most this many cells: beyond, each cell is a run of consecutive ranks. */
  maxCells: number;
}

const paint = (text: string, sgr: string, color: boolean) => (color ? `\x1b[${sgr}m${text}\x1b[0m` : text);

/** The cells of the ring, rank 0 first: `[=====X=========]`. */
export function rankCells(states: readonly RankState[], color: boolean, maxCells: number): string {
  const per = Math.max(1, Math.ceil(states.length / Math.max(1, maxCells)));
  let out = '';
  for (let i = 0; i < states.length; i += per) {
    let worst = states[i]!;
    for (let j = i + 1; j < Math.min(states.length, i + per); j++) if (SEVERITY.indexOf(states[j]!) > SEVERITY.indexOf(worst)) worst = states[j]!;
    out += paint(STATE_CELL[worst].glyph, STATE_CELL[worst].sgr, color);
  }
  return `[${out}]${per > 1 ? ` (${per} ranks a cell)` : ''}`;
}

export const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;

/** The live line: `[====X===] 12/40 steps  epoch 1  recovering  487 ms/step  ~14 s left  faults 1 healed of 1`. */
export function liveLine(s: JobStatus, f: LiveFigures): string {
  const parts = [rankCells(s.ranks.map((r) => r.state), f.color, f.maxCells), `${s.step}/${s.job.steps} steps`, `epoch ${s.epoch}`];
  if (s.phase !== 'training') parts.push(s.phase);
  if (s.stuckAt) parts.push(`stuck at ${s.stuckAt}`);
  if (f.stepMs !== null) parts.push(`${Math.round(f.stepMs)} ms/step`);
  if (f.etaS !== null) parts.push(`~${Math.ceil(f.etaS)} s left`);
  if (s.faults.injected || s.faults.detected) parts.push(`faults ${s.faults.recovered} healed of ${Math.max(s.faults.injected, s.faults.detected)}`);
  return parts.join('  ');
}

const where = (f: { rank?: number; link?: [number, number] }) => (f.link ? `link ${f.link[0]}->${f.link[1]}` : f.rank !== undefined ? `rank ${f.rank}` : 'every rank');

/** `fault 1 kill rank 5 at step 8 reduce-scatter` (ids are the scenario's, from 0: shown from 1). */
export function faultName(f: FaultReport): string {
  const at = f.atStep === null ? '' : ` at step ${f.atStep}${f.phase ? ` ${f.phase}` : ''}`;
  return `${f.id !== undefined ? `fault ${f.id + 1}` : 'fault from outside:'} ${f.kind} ${where(f)}${at}`;
}

/** What became of one fault: `...: detected in 0.02 s by exit, located rank 5; healed in 0.62 s (restart rank 5, restored from memory, 0 steps lost)`. */
export function faultLine(f: FaultReport): string {
  const head = faultName(f);
  if (f.injected && !f.struck) return `${head}: did not strike (${f.note ?? 'no reason known'})`;
  if (f.detectedBy === null) return `${head}: struck, not detected`;
  const detected = `detected${f.detectedAfterMs !== null ? ` in ${seconds(f.detectedAfterMs)}` : ''} by ${f.detectedBy}, located ${f.located ?? 'nowhere'}`;
  if (f.recoveredAfterMs === null) return `${head}: ${detected}; NOT healed${f.action ? ` (${f.action})` : ''}`;
  const how = [f.action, f.restoredFrom ? `restored from ${f.restoredFrom}` : null, f.lostSteps !== null ? `${f.lostSteps} steps lost` : null].filter(Boolean).join(', ');
  return `${head}: ${detected}; healed in ${seconds(f.recoveredAfterMs)}${how ? ` (${how})` : ''}`;
}

/** A straggler the detector named: `slow link 2->3 named at step 28 (first seen at step 24, score 68.4)`. */
export function stragglerLine(s: StragglerReport): string {
  const what = s.kind === 'link' ? `slow link ${s.link![0]}->${s.link![1]}` : `slow rank ${s.rank}`;
  const extra = [`first seen at step ${s.firstSeenStep}`, `score ${s.score}`, s.injected ? null : 'not injected', s.action !== 'report' ? s.action : null].filter(Boolean).join(', ');
  return `${what} named by the straggler detector at step ${s.detectedAtStep} (${extra})`;
}

export interface DigestCheck {
  /** The fault-free run's digest, and how it was had. */
  digest: string;
  how: string;
}

export interface DemoVerdict {
  ok: boolean;
  /** What went wrong, one line each (empty when ok). */
  problems: string[];
  text: string;
}

const shortDigest = (d: string) => `${d.slice(0, 12)}…`;

/** The closing summary: every fault found, located and healed, the stragglers named, exactness, the digest against the fault-free one, the files. */
export function demoSummary(r: RunReport, clean: DigestCheck, files: { label: string; path: string }[]): DemoVerdict {
  const problems: string[] = [];
  if (!r.ok) problems.push(`the run failed: ${r.error ?? `${r.wrong} wrong elements, ${r.stepsCompleted}/${r.stepsRequested} steps`}`);
  for (const f of r.faults) if (f.injected && f.recoveredAfterMs === null) problems.push(`${faultName(f)} was not healed`);
  for (const s of r.injectedStragglers) {
    if (s.kind !== 'jitter' && s.detectedAtStep === null) problems.push(`injected ${s.kind} ${where(s)} was not named${s.note ? ` (${s.note})` : ''}`);
  }
  const same = r.stateDigest !== null && r.stateDigest === clean.digest;
  if (r.stateDigest === null) problems.push('no state digest: the run did not finish');
  else if (!same) problems.push(`the state digest ${shortDigest(r.stateDigest)} differs from the fault-free run's ${shortDigest(clean.digest)}`);
  const ok = problems.length === 0;

  const lines = [
    '',
    `${ok ? 'OK' : 'FAILED'}  ringswarm demo: ${r.algo.length ? [...new Set(r.algo)].join(', then ') : 'no'} all-reduce, ${r.workers} workers x ${r.cardsPerWorker} cards = ${r.cards} cards, ` +
      `${formatBytes(r.bytesPerCard)} ${r.dtype} ${r.op} per card, seed ${r.seed}, ${seconds(r.wallMs)}`,
  ];
  if (r.error) lines.push(`  error:     ${r.error}`);
  const healed = r.faults.filter((f) => f.recoveredAfterMs !== null).length;
  lines.push(`  faults:    ${r.faults.length} (${r.faults.filter((f) => f.injected).length} injected), ${healed} found, located and healed; ${r.restarts} restarts, ${r.epochs.length} epochs`);
  for (const f of r.faults) lines.push(`    ${faultLine(f)}`);
  const named = r.stragglers;
  lines.push(`  stragglers: ${named.length} named`);
  for (const s of named) lines.push(`    ${stragglerLine(s)}`);
  for (const s of r.injectedStragglers) {
    if (s.kind !== 'jitter' && s.detectedAtStep === null) lines.push(`    injected ${s.kind} ${where(s)} from step ${s.atStep ?? '?'}: NOT named${s.note ? ` (${s.note})` : ''}`);
  }
  lines.push(
    `  result:    ${r.wrong === 0 && r.stepsCompleted === r.stepsRequested ? 'exact' : 'NOT exact'}: ${r.wrong} wrong elements, ${r.stepsCompleted}/${r.stepsRequested} steps`,
    `  digest:    ${r.stateDigest === null ? 'none' : `${shortDigest(r.stateDigest)} ${same ? '=' : 'DIFFERS from'} the fault-free run's${same ? '' : ` ${shortDigest(clean.digest)}`}`} (${clean.how})`,
    `  goodput:   ${(r.goodput.ratio * 100).toFixed(1)}% of ${seconds(r.goodput.wallMs)} training, ${r.goodput.lostSteps} steps lost, ${r.goodput.recomputedSteps} recomputed; step p50 ${Math.round(r.stepMs.p50)} ms, all-reduce p50 ${Math.round(r.allreduceMs.p50)} ms`,
  );
  for (const f of files) lines.push(`  ${`${f.label}:`.padEnd(10)} ${f.path}`);
  if (!ok) for (const p of problems) lines.push(`  problem:   ${p}`);
  lines.push('');
  return { ok, problems, text: lines.join('\n') };
}
