// What can be injected, in one place: fault kinds, straggler kinds, the phases a fault can be
// aimed at, and the defaults of optional fields. In the wire contract because the coordinator's
// orders to workers (FaultOrder) carry them; scenarios, the coordinator and the scripts import them.
import type { Phase } from './frame.js';

/** Faults: a worker or a link fails. */
export const FAULT_KINDS = ['kill', 'hang', 'crash', 'link', 'corrupt'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Kinds that slow a rank or a link down without failing it: stragglers. */
export const STRAGGLER_KINDS = ['slow', 'slow-link', 'jitter', 'pause'] as const;
export type StragglerKind = (typeof STRAGGLER_KINDS)[number];

/** The phases of a training step's all-reduce that a fault can be aimed at (a subset of the frame phases). */
export const FAULT_PHASES = ['reduce-scatter', 'all-gather'] as const satisfies readonly Phase[];
export type FaultPhase = (typeof FAULT_PHASES)[number];

/** A trigger at a training step, optionally a phase and a chunk of it (chunks count within a phase). */
export interface StepTrigger {
  step: number;
  phase?: FaultPhase;
  chunk?: number;
}

/** Defaults of the optional fields of faults. */
export const FAULT_DEFAULTS = {
  /** A crash's exit code. */
  crashCode: 1,
  /** How many data frames a corrupt fault flips bytes in. */
  corruptFrames: 1,
  /** What a random spec draws from when it names no kinds. */
  randomKinds: FAULT_KINDS,
} as const;
