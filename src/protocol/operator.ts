// The operator's interface to a running coordinator (`ringswarm status`, `ringswarm inject`): plain
// HTTP on the control port, beside the workers' WebSocket upgrades, with the job token as a bearer
// token. `GET /v1/status` answers a JobStatus; `POST /v1/inject` takes `{ "fault": "kill:rank=3" }`
// (the --inject shorthand, or the entry a scenario file holds) and answers the fault as the report
// will record it. Errors are `{ "error": { "code", "message" } }`: 400 and 413 a malformed body
// (RS_ERR_BAD_MESSAGE), 401 no or wrong token (RS_ERR_AUTH), 404 and 405 (RS_ERR_PROTOCOL), 409 a
// fault the job refuses (RS_ERR_USAGE, with the same message as the CLI's --inject).
import { z } from 'zod';

export { MAX_OPERATOR_BODY_BYTES, OPERATOR_PATHS } from './operator-paths.js';

/**
 * What a rank is doing, as the coordinator sees it: `ringing` (connecting its links for the
 * epoch), `training` (computing or in an op), `stalled` (its op has not moved past its watchdog),
 * `silent` (no heartbeat for half the deadline, --heartbeat-timeout-ms: on its way to being found dead), `frozen` (stopped by an injected hang or pause),
 * `recovering` (the job is aborting or replacing after a fault), `done` (all steps run), `dead`.
 */
export const RANK_STATES = ['joining', 'ringing', 'training', 'stalled', 'silent', 'frozen', 'recovering', 'done', 'dead'] as const;
export type RankState = (typeof RANK_STATES)[number];

const nat = z.number().int().nonnegative();

export const RankStatus = z.object({
  /** The rank in this epoch's ring. */
  rank: nat,
  /** The rank at launch (what a scenario's and an inject's rank means); differs after a shrink. */
  home: nat,
  workerId: z.string(),
  pid: nat,
  host: z.string().nullable(),
  state: z.enum(RANK_STATES),
  /** The op it is in or last finished (op i is step i's all-reduce), its phase ('done': finished) and the chunks it had received in the phase; null before its first. */
  opSeq: nat.nullable(),
  phase: z.string().nullable(),
  chunk: nat.nullable(),
  /** Since the coordinator last heard from it. */
  heartbeatAgeMs: z.number().nonnegative(),
});
export type RankStatus = z.infer<typeof RankStatus>;

export const JobStatus = z.object({
  job: z.object({
    workers: nat,
    cardsPerWorker: nat,
    bytesPerCard: nat,
    steps: nat,
    algo: z.string(),
    onFailure: z.string(),
  }),
  /** joining, ringing, training, recovering or finished. */
  phase: z.string(),
  epoch: nat,
  /** The step under way (the lowest step not every rank has done); `steps` when all are done. */
  step: nat,
  ranks: z.array(RankStatus),
  /** Standby workers (--on-failure spare). */
  spares: z.array(z.object({ workerId: z.string(), pid: nat, host: z.string().nullable() })),
  /** When the job is stuck (a rank stalled or silent): the ranks the others wait for, as the detector locates them; else empty. */
  waitingFor: z.array(nat),
  /** Where the detector would put it now ("rank 3", "link 2->3"), when stuck; else null. */
  stuckAt: z.string().nullable(),
  /** Faults so far, injected live or at launch. */
  faults: z.object({ injected: nat, detected: nat, recovered: nat }),
});
export type JobStatus = z.infer<typeof JobStatus>;

export const InjectRequest = z.object({ fault: z.union([z.string().min(1), z.record(z.string(), z.unknown())]) });
export type InjectRequest = z.infer<typeof InjectRequest>;

export const OperatorError = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
export type OperatorError = z.infer<typeof OperatorError>;

/** A fault a running job took: its id, and its entry as the report will hold it (struck, detection and recovery fill in later). */
export const InjectAnswerBody = z.object({ id: nat, fault: z.object({ kind: z.string() }).passthrough() });
/** The fault's entry is a FaultReport (src/coordinator/config.ts); the schema checks only its kind. */
export interface InjectAnswerBody {
  id: number;
  fault: { kind: string };
}
