// The exit codes of `ringswarm` and its workers, stable so that a launcher's restart rules (Slurm's
// --requeue, a Kubernetes podFailurePolicy, a wrapper script) can tell them apart. Pure.

export const EXIT = {
  /** The run ended ok (every result exact); a worker: told to shut down at the end. */
  ok: 0,
  /** The run failed an invariant or gave up (a wrong result, too many restarts, a fault not healed). */
  failed: 1,
  /** Bad input: a flag, a scenario, a token; a worker refused at the door (rank taken, world size). */
  usage: 2,
  /** A worker lost its coordinator (unreachable, or its connection ended without a goodbye). */
  coordinatorLost: 3,
  /** A worker the coordinator replaced or dropped from the ring (its rank now belongs to another). */
  replaced: 4,
  /** A bug: an uncaught exception. */
  internal: 70,
  /** Interrupted by SIGINT (Ctrl-C) or SIGTERM: 128 + the signal's number, after a partial report. */
  sigint: 130,
  sigterm: 143,
} as const;

/** A worker's exit code when its control connection closed with `code` (the WebSocket close code). */
export function workerExitForClose(code: number): number {
  if (code === 1000) return EXIT.ok;
  // RS_ERR_BAD_MESSAGE, RS_ERR_AUTH, RS_ERR_PROTOCOL: refused at the door or for what it said.
  if (code === 4001 || code === 4003 || code === 4008) return EXIT.usage;
  // RS_ERR_PEER_LOST: replaced, or dropped from the ring.
  if (code === 4005) return EXIT.replaced;
  return EXIT.coordinatorLost;
}
