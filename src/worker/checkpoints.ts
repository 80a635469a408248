// Checkpoints of a worker's card states, in memory: its own (to roll back to), and the copy it
// keeps of its ring predecessor's (so one lost process loses nothing, as Gemini does). A copy
// travels as 'checkpoint' frames over the ring link: op sequence id = step, chunk = card index,
// offset = element offset in that card's state (CheckpointStore); or, with --checkpoint-copy shm,
// it is written once into a shared slot whose name alone travels (SharedCheckpointStore). Pure
// bookkeeping; the worker does the sending, the slots the I/O.
import { allocElements, elementBytes, viewElements, type DType, type Elements } from '../collective/dtypes.js';
import { chunkCount, chunkRange } from '../collective/ring.js';
import { SHARED_SLOTS, type SharedSlots } from '../runtime/shared-slots.js';

/** How many checkpoints to keep, own and held: the newest may not be complete everywhere yet. */
const KEEP = 2;
/** Own checkpoints whose copies may be in flight at once before the oldest loan is forgotten. */
const MAX_LOANS = 4;

export interface CheckpointPiece {
  card: number;
  offset: number;
  data: Elements;
}

interface Held {
  states: Elements[];
  elementsLeft: number;
}

/** Card states cut into pieces of at most `chunkElems` elements (views, no copy). */
export function checkpointPieces(states: readonly Elements[], chunkElems: number): CheckpointPiece[] {
  const out: CheckpointPiece[] = [];
  states.forEach((s, card) => {
    const whole = { offset: 0, count: s.length };
    for (let k = 0; k < chunkCount(s.length, chunkElems); k++) {
      const r = chunkRange(whole, chunkElems, k);
      out.push({ card, offset: r.offset, data: s.subarray(r.offset, r.offset + r.count) });
    }
  });
  return out;
}

export class CheckpointStore {
  private readonly own = new Map<number, Elements[]>();
  /** owner (its first card id) -> step -> the copy being assembled or complete. */
  private readonly held = new Map<number, Map<number, Held>>();

  constructor(
    private readonly dtype: DType,
    private readonly cards: number,
    private readonly count: number,
  ) {}

  /** Buffers of pruned checkpoints, reused rather than allocated anew every step. */
  private readonly spare: Elements[][] = [];
  /** Own checkpoints with pieces lent out (sent without a copy, not yet written): not reused until returned. */
  private readonly lent = new Map<Elements[], number>();

  /**
   * Buffers for a new entry of `m`: those of its oldest entry when the new one will push that out
   * (KEEP entries already, none of them lent), else a spare, else new ones. So a checkpoint every
   * step keeps KEEP sets, not KEEP + 1.
   */
  private buffers<T>(m: Map<number, T>, states: (t: T) => Elements[]): Elements[] {
    if (m.size >= KEEP) {
      const oldest = Math.min(...m.keys());
      const b = states(m.get(oldest)!);
      if (!this.lent.has(b)) {
        m.delete(oldest);
        return b;
      }
    }
    return this.spare.pop() ?? Array.from({ length: this.cards }, () => allocElements(this.dtype, this.count));
  }

  private retire(b: Elements[]): void {
    if (!this.lent.has(b)) this.spare.push(b);
  }

  /** Keep a copy of `states` as the checkpoint of `step` (the state before that step runs). */
  save(step: number, states: readonly Elements[]): void {
    const copy = this.own.get(step) ?? this.buffers(this.own, (b) => b);
    copy.forEach((c, j) => c.set(states[j]));
    this.own.set(step, copy);
    for (const old of prune(this.own)) this.retire(old);
  }

  /**
   * The pieces of own checkpoint `step` (views, no copy) to send to the rank that keeps a copy,
   * and the call to make once every one of them is written: until then its buffers are not
   * reused (a newer checkpoint pushing it out takes other buffers).
   */
  lend(step: number, chunkElems: number): { pieces: CheckpointPiece[]; returned: () => void } {
    const b = this.own.get(step);
    if (!b) return { pieces: [], returned: () => {} };
    // Loans a link never answered (a transport that drops frames without a word) are forgotten
    // past a few, so memory stays bounded: a frame written from reused buffers after that fails
    // its checksum at the receiver, which drops it (that copy is then incomplete, never wrong).
    if (!this.lent.has(b) && this.lent.size >= MAX_LOANS) this.lent.delete(this.lent.keys().next().value!);
    this.lent.set(b, (this.lent.get(b) ?? 0) + 1);
    let done = false;
    return {
      pieces: checkpointPieces(b, chunkElems),
      returned: () => {
        if (done || !this.lent.has(b)) return;
        done = true;
        const n = this.lent.get(b)! - 1;
        if (n > 0) return void this.lent.set(b, n);
        // Pushed out meanwhile: left to the collector (a set kept spare would be idle memory).
        this.lent.delete(b);
      },
    };
  }

  /** Own checkpoints lent out now (at most MAX_LOANS). */
  get loans(): number {
    return this.lent.size;
  }

  ownSteps(): number[] {
    return [...this.own.keys()].sort((a, b) => a - b);
  }

  /** Copy checkpoint `step` (own, or held for `owner`) into `states`; false if there is none. */
  restore(step: number, states: Elements[], owner?: number): boolean {
    const src = owner === undefined ? this.own.get(step) : this.completeHeld(owner, step);
    if (!src) return false;
    states.forEach((s, j) => s.set(src[j]));
    return true;
  }

  /** A piece of `owner`'s checkpoint `step` arrived. True when that copy just became complete. */
  receive(owner: number, step: number, piece: CheckpointPiece): boolean {
    if (piece.card < 0 || piece.card >= this.cards || piece.offset < 0 || piece.offset + piece.data.length > this.count) {
      throw new RangeError(`checkpoint piece card ${piece.card} offset ${piece.offset} length ${piece.data.length} out of range`);
    }
    let byStep = this.held.get(owner);
    if (!byStep) this.held.set(owner, (byStep = new Map()));
    let h = byStep.get(step);
    if (!h) {
      h = { states: this.buffers(byStep, (x) => x.states), elementsLeft: this.cards * this.count };
      byStep.set(step, h);
      for (const old of prune(byStep)) this.retire(old.states);
    }
    // A complete copy sent again (after a rollback: the same cards at the same step) is the same.
    if (h.elementsLeft <= 0) return false;
    h.states[piece.card].set(piece.data, piece.offset);
    const before = h.elementsLeft;
    h.elementsLeft -= piece.data.length;
    return before > 0 && h.elementsLeft <= 0;
  }

  private completeHeld(owner: number, step: number): Elements[] | undefined {
    const h = this.held.get(owner)?.get(step);
    return h && h.elementsLeft <= 0 ? h.states : undefined;
  }

  /** Steps of `owner`'s checkpoint that this store holds complete. */
  heldSteps(owner: number): number[] {
    return [...(this.held.get(owner)?.entries() ?? [])].filter(([, h]) => h.elementsLeft <= 0).map(([s]) => s);
  }

  /** Every complete copy held, by owner (its first card). */
  heldInventory(): { firstCard: number; steps: number[] }[] {
    return [...this.held.keys()].sort((a, b) => a - b).map((firstCard) => ({ firstCard, steps: this.heldSteps(firstCard).sort((a, b) => a - b) }));
  }

  /** The held copy of `owner`'s checkpoint `step`, complete, for a replacement that asks for it. */
  heldCopy(owner: number, step: number): Elements[] | undefined {
    return this.completeHeld(owner, step);
  }

}

/** Drop all but the newest KEEP entries; returns what was dropped. */
function prune<T>(m: Map<number, T>): T[] {
  const steps = [...m.keys()].sort((a, b) => a - b);
  const dropped: T[] = [];
  for (const s of steps.slice(0, Math.max(0, steps.length - KEEP))) {
    dropped.push(m.get(s)!);
    m.delete(s);
  }
  return dropped;
}

/** Slot names are `<owner's first card>.<its process>.<k>`: a replacement writes its own. */
const SLOT_NAME = /^\d+\.[A-Za-z0-9_-]+\.\d+$/;

/** The part of a slot's name that says which process wrote it. */
function writerOf(name: string): string {
  return name.slice(0, name.lastIndexOf('.'));
}

/**
 * The checkpoints of a worker whose successor is on the same host: its own are written to shared
 * slots (the one copy: nothing travels to the successor but the slot's name), and it keeps the
 * names of its predecessor's. The same questions as CheckpointStore answer, without a byte of the
 * states in this process. Pure bookkeeping: the slots do the I/O.
 */
export class SharedCheckpointStore {
  /** Own checkpoints: step -> slot name. */
  private readonly own = new Map<number, string>();
  /** owner (its first card id) -> step -> slot name. */
  private readonly held = new Map<number, Map<number, string>>();
  /** When each own slot was last written (a counter): the next write takes the oldest free one. */
  private readonly written: number[] = new Array<number>(SHARED_SLOTS).fill(-1);
  private writes = 0;

  constructor(
    private readonly slots: SharedSlots,
    private readonly dtype: DType,
    private readonly cards: number,
    private readonly count: number,
    /** This worker's first card: its slots are named by it. */
    private readonly firstCard: number,
    /** Names this process's slots apart from an earlier process's of the same cards (letters, digits, - and _). */
    private readonly writer: string,
  ) {
    if (!/^[A-Za-z0-9_-]+$/.test(writer)) throw new RangeError(`slot writer id ${JSON.stringify(writer)}: letters, digits, - and _ only`);
  }

  /**
   * Keep `states` as the checkpoint of `step`: written to the slot written longest ago that no
   * kept checkpoint is in; or, when they are the live states mapped from a slot (mapStates), that
   * slot is marked complete as they are, with no copy, and the next change moves them (moveLive).
   * Returns the slot's name, for the successor.
   */
  save(step: number, states: readonly Elements[]): string {
    const live = this.live;
    if (live && states === live.states) {
      // Kept already (saved again with no change between): the slot holds its step as it is.
      if (live.kept && this.stepOf(live.name) !== step) throw new RangeError(`live states kept as checkpoint ${this.stepOf(live.name)} saved as ${step}`);
      evictFor(this.own, step);
      if (!live.kept) this.slots.commit!(live.name, this.firstCard, step);
      this.own.delete(step);
      this.own.set(step, live.name);
      live.kept = true;
      return live.name;
    }
    evictFor(this.own, step);
    // Not the slot of an earlier copy of this step either: its holder may be reading it.
    const inUse = new Set(this.own.values());
    this.own.delete(step);
    const name = this.freeSlot(inUse);
    this.slots.write(name, this.firstCard, step, states);
    this.own.set(step, name);
    return name;
  }

  /** The slot written longest ago that none of `inUse` (nor the live states) is in, marked as written now. */
  private freeSlot(inUse: Set<string>): string {
    let k = -1;
    for (let i = 0; i < SHARED_SLOTS; i++) {
      const name = this.slotName(i);
      if (inUse.has(name) || this.live?.name === name) continue;
      if (k < 0 || this.written[i]! < this.written[k]!) k = i;
    }
    this.written[k] = this.writes++;
    return this.slotName(k);
  }

  private stepOf(name: string): number | undefined {
    for (const [step, n] of this.own) if (n === name) return step;
    return undefined;
  }

  /** The live states when they are mapped from a slot of their own; kept: that slot is a checkpoint now. */
  private live: { name: string; states: Elements[]; kept: boolean } | null = null;

  /**
   * Keep the live card states in a slot of their own, mapped (zero-copy checkpoints), where the
   * slots can be: their views (contents undefined until written), or null, and the caller keeps
   * its own states, which save() copies.
   */
  mapStates(): Elements[] | null {
    if (!this.slots.map || this.live) return this.live?.states ?? null;
    const name = this.freeSlot(new Set(this.own.values()));
    const views = this.slots.map(name, this.firstCard, this.cards, this.count * elementBytes(this.dtype));
    if (!views) return null;
    this.live = { name, states: views.map((b) => viewElements(this.dtype, b)), kept: false };
    return this.live.states;
  }

  /**
   * Before the live states change (mapped ones only: call it before every change). When save()
   * kept them as a checkpoint, they move to a free slot: `write(to)` must set every element of `to`
   * (the kept states are what it reads); else `write` gets the live states themselves, to change
   * in place. Returns the live states after. Slots stay mapped: the kept ones are checkpoints now.
   */
  moveLive(write: (to: Elements[]) => void): Elements[] {
    const live = this.live;
    if (!live) throw new RangeError('moveLive: the live states are not mapped (mapStates)');
    if (!live.kept) {
      write(live.states);
      return live.states;
    }
    const name = this.freeSlot(new Set(this.own.values()));
    const views = this.slots.map!(name, this.firstCard, this.cards, this.count * elementBytes(this.dtype))!;
    const to = views.map((b) => viewElements(this.dtype, b));
    write(to);
    this.live = { name, states: to, kept: false };
    return to;
  }

  /** Bytes of this worker's slots it maps beyond its live states': checkpoints, not the worker's own memory. */
  get mappedCheckpointBytes(): number {
    const all = this.slots.mappedBytes?.() ?? 0;
    return this.live ? Math.max(0, all - this.cards * this.count * elementBytes(this.dtype)) : all;
  }

  /** The live states are mapped from a slot (mapStates gave them). */
  get statesMapped(): boolean {
    return this.live !== null;
  }

  private slotName(k: number): string {
    return `${this.firstCard}.${this.writer}.${k}`;
  }

  ownSteps(): number[] {
    return [...this.own.keys()].sort((a, b) => a - b);
  }

  /** Copy checkpoint `step` (own, or held for `owner`) into `states`; false if there is none (or its slot no longer holds it). */
  restore(step: number, states: Elements[], owner?: number): boolean {
    const name = owner === undefined ? this.own.get(step) : this.held.get(owner)?.get(step);
    return name !== undefined && this.slots.read(name, owner ?? this.firstCard, step, states);
  }

  /**
   * `owner` says its checkpoint `step` is in slot `name`. True when this store now holds it (the
   * slot is there and complete); false when it is not (a slot this host cannot see: nothing kept).
   * Slots of an owner's earlier process that no kept copy names any more are removed.
   */
  adopt(owner: number, step: number, name: string): boolean {
    if (!SLOT_NAME.test(name) || !name.startsWith(`${owner}.`)) throw new RangeError(`slot ${JSON.stringify(name)} is not one of owner ${owner}'s`);
    if (!this.slots.holds(name, owner, step)) return false;
    let byStep = this.held.get(owner);
    if (!byStep) this.held.set(owner, (byStep = new Map()));
    const before = new Set(byStep.values());
    evictFor(byStep, step);
    byStep.set(step, name);
    const kept = new Set(byStep.values());
    const writer = writerOf(name);
    for (const old of before) if (!kept.has(old) && writerOf(old) !== writer) this.slots.remove(old);
    return true;
  }

  /** Steps of `owner`'s checkpoint that this store holds. */
  heldSteps(owner: number): number[] {
    return [...(this.held.get(owner)?.keys() ?? [])];
  }

  /** Every copy held, by owner (its first card). */
  heldInventory(): { firstCard: number; steps: number[] }[] {
    return [...this.held.keys()].sort((a, b) => a - b).map((firstCard) => ({ firstCard, steps: this.heldSteps(firstCard).sort((a, b) => a - b) }));
  }

  /** The held copy of `owner`'s checkpoint `step`, read out of its slot for a replacement that asks for it. */
  heldCopy(owner: number, step: number): Elements[] | undefined {
    const states = Array.from({ length: this.cards }, () => allocElements(this.dtype, this.count));
    return this.restore(step, states, owner) ? states : undefined;
  }
}

/** Make room in `m` for an entry of `step`: with KEEP entries already and none of `step`, the oldest goes (as CheckpointStore reuses its buffers). */
function evictFor<T>(m: Map<number, T>, step: number): void {
  if (m.has(step) || m.size < KEEP) return;
  m.delete(Math.min(...m.keys()));
}
