// Fault scenarios: the file format, the --inject shorthand, checks against a run, and the faults
// a seed draws. Pure: the caller reads the file and passes its text in. One module per job:
// types.ts (types, limits, ScenarioError), read.ts (a file's text), validate.ts (entries, and a
// scenario against a run), shorthand.ts (--inject), random-faults.ts, expand.ts (merge, expand).
export {
  ENTRY_KINDS,
  FAULT_DEFAULTS,
  FAULT_KINDS,
  FAULT_PHASES,
  MAX_LISTED_ISSUES,
  MAX_SCENARIO_BYTES,
  MAX_SCENARIO_FAULTS,
  PHASES,
  STRAGGLER_KINDS,
  ScenarioError,
  type CorruptFault,
  type CrashFault,
  type EntryKind,
  type Fault,
  type FaultInput,
  type FaultKind,
  type FaultPhase,
  type HangFault,
  type JitterFault,
  type KillFault,
  type LinkFault,
  type PauseFault,
  type Phase,
  type RandomSpec,
  type Scenario,
  type ScenarioFault,
  type ScenarioStraggler,
  type SlowFault,
  type SlowLinkFault,
  type StepTrigger,
  type StragglerFault,
  type StragglerKind,
  type Trigger,
} from './types.js';
export { checkScenarioSize, parseScenario } from './read.js';
export { validateAgainst } from './validate.js';
export { LIVE_INJECT, parseInject, parseInjects, parseLiveInject } from './shorthand.js';
export { expandRandom, RANDOM_FAULTS_STREAM } from './random-faults.js';
export { defaultLinkTo, expandScenario, expandStragglers, mergeScenarios, resolveFault, resolveStraggler, scenarioForRun } from './expand.js';
