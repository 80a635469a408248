// A coordinator machine driven by hand, one event at a time, with time as a value: the order of
// every message, exit and timer is the test's choice, as in raft's tests.
import { expect } from 'vitest';
import { RUN_DEFAULTS, type RunConfig } from '../../src/coordinator/config.js';
import { CoordinatorMachine, type CoordinatorAction, type CoordinatorEvent } from '../../src/coordinator/machine.js';
import { jobSpec } from '../../src/coordinator/run.js';
import type { CoordinatorMessage, WorkerMessage } from '../../src/protocol/control.js';

export type Msg<T extends CoordinatorMessage['type']> = Extract<CoordinatorMessage, { type: T }>;

/** A machine, a clock that the test moves, and every action so far. */
export class Harness {
  t = 0;
  readonly m: CoordinatorMachine;
  actions: CoordinatorAction[] = [];
  readonly timers = new Map<string, number>();

  constructor(cfg: Partial<RunConfig>) {
    const full: RunConfig = { ...RUN_DEFAULTS, workers: 4, spawn: 4, cardsPerWorker: 1, bytesPerCard: 16, steps: 3, ...cfg };
    this.m = new CoordinatorMachine(full, jobSpec(full), () => 'ring');
    this.record(this.m.begin(this.t));
  }

  private record(as: CoordinatorAction[]): CoordinatorAction[] {
    for (const a of as) {
      if (a.type === 'arm') this.timers.set(a.name, this.t + a.ms);
      if (a.type === 'disarm') this.timers.delete(a.name);
    }
    this.actions.push(...as);
    return as;
  }

  on(e: CoordinatorEvent, dt = 1): CoordinatorAction[] {
    this.t += dt;
    return this.record(this.m.handle(e, this.t));
  }

  /** Fire timer `name` at its due time (which must be armed). */
  fire(name: string): CoordinatorAction[] {
    const due = this.timers.get(name);
    expect(due, `timer ${name} is armed`).toBeDefined();
    this.timers.delete(name);
    this.t = Math.max(this.t, due!);
    return this.record(this.m.handle({ type: 'timer', name }, this.t));
  }

  msg(worker: string, msg: WorkerMessage): CoordinatorAction[] {
    return this.on({ type: 'message', worker, msg });
  }

  sent<T extends CoordinatorMessage['type']>(type: T, since = 0): { to: string; msg: Msg<T> }[] {
    return this.actions.slice(since).flatMap((a) => (a.type === 'send' && a.msg.type === type ? [{ to: a.to, msg: a.msg as Msg<T> }] : []));
  }

  join(id: string): void {
    this.on({ type: 'joined', worker: { workerId: id, pid: 100 + this.m.everyone.length, dataUrl: `mem://${id}`, spawned: true } });
  }

  /** Every member says ready for the current epoch. */
  readyAll(): void {
    for (const m of [...this.m.members]) this.msg(m.workerId, { type: 'ready', epoch: this.m.epoch });
  }

  /** Every member reports step `step` (and its checkpoint of `step` first, as workers do). */
  step(step: number): void {
    this.checkpoint(step);
    for (const m of [...this.m.members]) {
      this.msg(m.workerId, {
        type: 'step',
        epoch: this.m.epoch,
        step,
        wrong: 0,
        timings: { computeMs: 1, allreduceMs: 1, stepMs: 2, waitMs: 0, linkMs: 0, bytesSent: 16 },
        rssMB: 50,
        pssMB: null,
      });
    }
  }

  /** Every member keeps checkpoint `step` (taken at the start of that step) and its successor a copy. */
  checkpoint(step: number): void {
    for (const m of [...this.m.members]) {
      this.msg(m.workerId, { type: 'checkpointed', epoch: this.m.epoch, step, disk: false });
      const succ = this.m.members[(m.rank + 1) % this.m.W];
      this.msg(succ.workerId, { type: 'holding', epoch: this.m.epoch, owner: m.rank, step });
    }
  }

  done(): void {
    for (const m of [...this.m.members]) this.msg(m.workerId, { type: 'done', epoch: this.m.epoch, cardDigests: [`d${m.firstCard}`], rssMBMax: 50 });
  }

  started(): void {
    for (let i = 0; i < this.m.cfg.workers; i++) this.join(`w${i}`);
    this.readyAll();
  }
}

