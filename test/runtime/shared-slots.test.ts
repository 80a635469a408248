// Shared checkpoint slots as files (what a run puts in /dev/shm), the run's slot folder, and when a
// run uses them.
import { closeSync, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileSlots, makeSlotDir, removeSlotDir, SHARED_SLOTS, slotDirBytes } from '../../src/runtime/shared-slots.js';
import { nativeMemory } from '../../src/native/kernels.js';
import { checkpointCopyPlan } from '../../src/coordinator/run.js';
import { RUN_DEFAULTS, type RunConfig } from '../../src/coordinator/config.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'rs-slots-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const states = (step: number, cards = 3, count = 1024) => Array.from({ length: cards }, (_, c) => Float32Array.from({ length: count }, (_, i) => step + c * 0.5 + i));

describe('fileSlots', () => {
  it('reads back what was written, for the owner and step it was written as only', () => {
    const dir = tempDir();
    const writer = fileSlots(dir);
    const reader = fileSlots(dir);
    writer.write('8.w-1.0', 8, 5, states(5));
    writer.write('8.w-1.0', 8, 6, states(6));
    const out = states(0);
    expect(reader.holds('8.w-1.0', 8, 6)).toBe(true);
    expect(reader.read('8.w-1.0', 8, 6, out)).toBe(true);
    expect(out).toEqual(states(6));
    expect(reader.holds('8.w-1.0', 8, 5)).toBe(false);
    expect(reader.read('8.w-1.0', 8, 5, out)).toBe(false);
    expect(reader.read('8.w-1.0', 9, 6, out)).toBe(false);
    // Another shape than was written.
    expect(reader.read('8.w-1.0', 8, 6, states(0, 2))).toBe(false);
    expect(reader.read('8.w-1.0', 8, 6, states(0, 3, 512))).toBe(false);
    expect(reader.read('8.w-1.1', 8, 6, out)).toBe(false);
    writer.close();
  });

  it('a slot whose writer died halfway (header still says being written) reads as nothing', () => {
    const dir = tempDir();
    const slots = fileSlots(dir);
    slots.write('0.w-1.2', 0, 3, states(3));
    const fd = openSync(join(dir, '0.w-1.2'), 'r+');
    writeSync(fd, new Uint8Array(4), 0, 4, 4); // state: 0, being written
    closeSync(fd);
    expect(slots.holds('0.w-1.2', 0, 3)).toBe(false);
    expect(slots.read('0.w-1.2', 0, 3, states(0))).toBe(false);
    // Written again in full, it reads again.
    slots.write('0.w-1.2', 0, 4, states(4));
    const out = states(0);
    expect(slots.read('0.w-1.2', 0, 4, out)).toBe(true);
    expect(out).toEqual(states(4));
    slots.close();
  });

  it('a slot cut short reads as nothing', () => {
    const dir = tempDir();
    const slots = fileSlots(dir);
    slots.write('0.w-1.0', 0, 1, states(1, 2, 2048));
    const fd = openSync(join(dir, '0.w-1.0'), 'r+');
    // Same header, fewer bytes behind it: a file truncated by hand.
    ftruncateSync(fd, 4096 + 100);
    closeSync(fd);
    expect(slots.read('0.w-1.0', 0, 1, states(0, 2, 2048))).toBe(false);
    slots.close();
  });

  it('a slot that cannot be written says which', () => {
    const dir = join(tempDir(), 'gone');
    expect(() => fileSlots(dir).write('0.w-1.0', 0, 1, states(1))).toThrow(/cannot write checkpoint slot .*gone\/0\.w-1\.0: ENOENT/);
  });

  it('removes a slot, open or not', () => {
    const dir = tempDir();
    const slots = fileSlots(dir);
    slots.write('0.w-1.0', 0, 1, states(1));
    slots.write('0.w-1.1', 0, 2, states(2));
    expect(slotDirBytes(dir)).toBe(2 * (4096 + 3 * 4096));
    slots.remove('0.w-1.0');
    fileSlots(dir).remove('0.w-1.1');
    slots.remove('0.w-1.9');
    expect(readdirSync(dir)).toEqual([]);
    slots.close();
  });
});

describe.skipIf(!nativeMemory)('fileSlots, mapped (the live states in a slot)', () => {
  const asF32 = (b: Uint8Array) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);

  it('reads as nothing while mapped, as the views hold it once committed, and as nothing again once remapped', () => {
    const dir = tempDir();
    const owner = fileSlots(dir);
    const reader = fileSlots(dir);
    const views = owner.map!('8.w-1.0', 8, 3, 4096)!;
    expect(views.map((v) => v.byteLength)).toEqual([4096, 4096, 4096]);
    const out = states(0);
    expect(reader.holds('8.w-1.0', 8, 5)).toBe(false);
    views.forEach((v, j) => asF32(v).set(states(5)[j]!));
    expect(reader.read('8.w-1.0', 8, 5, out)).toBe(false);
    owner.commit!('8.w-1.0', 8, 5);
    expect(reader.read('8.w-1.0', 8, 5, out)).toBe(true);
    expect(out).toEqual(states(5));
    expect(owner.mappedBytes!()).toBe(3 * 4096);
    // Mapped again to be changed: the same memory, and being written until the next commit.
    const again = owner.map!('8.w-1.0', 8, 3, 4096)!;
    expect(asF32(again[1]!)).toEqual(states(5)[1]);
    expect(reader.holds('8.w-1.0', 8, 5)).toBe(false);
    expect(owner.mappedBytes!()).toBe(3 * 4096);
    owner.remove('8.w-1.0');
    expect(views[0]!.length).toBe(0);
    expect(owner.mappedBytes!()).toBe(0);
    expect(() => owner.commit!('8.w-1.0', 8, 6)).toThrow(/not mapped/);
    owner.close();
    reader.close();
  });

  it('says which slot it cannot map, and maps nothing for no bytes', () => {
    const slots = fileSlots(join(tempDir(), 'gone'));
    expect(() => slots.map!('0.w-1.0', 0, 1, 4096)).toThrow(/cannot map checkpoint slot .*gone\/0\.w-1\.0: ENOENT/);
    expect(fileSlots(tempDir()).map!('0.w-1.0', 0, 0, 4096)).toBeNull();
  });

  it('close() unmaps every slot', () => {
    const slots = fileSlots(tempDir());
    const a = slots.map!('0.w-1.0', 0, 2, 4096)!;
    const b = slots.map!('0.w-1.1', 0, 2, 4096)!;
    slots.close();
    expect([a[0]!.length, b[1]!.length]).toEqual([0, 0]);
  });
});

describe('the run slot folder', () => {
  it('is made fresh, removed after, and a dead coordinator\'s is swept; a live one\'s is left', () => {
    const root = tempDir();
    const dead = join(root, 'ringswarm-999999999-abc');
    const live = join(root, `ringswarm-${process.pid}-old`);
    const other = join(root, 'something-else');
    for (const d of [dead, live, other]) mkdirSync(d);
    const dir = makeSlotDir(root);
    expect(existsSync(dir)).toBe(true);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(other)).toBe(true);
    removeSlotDir(dir);
    expect(existsSync(dir)).toBe(false);
  });
});

describe('checkpointCopyPlan', () => {
  const cfg = (o: Partial<RunConfig>): RunConfig => ({ ...RUN_DEFAULTS, ...o });
  const need = (c: RunConfig) => (c.spawn + c.spares) * SHARED_SLOTS * c.cardsPerWorker * c.bytesPerCard;
  const roomy = 1e12;

  it('auto: shared memory when every worker is spawned here and nothing is emulated', () => {
    expect(checkpointCopyPlan(cfg({}), roomy).copy).toBe('shm');
    expect(checkpointCopyPlan(cfg({ checkpointCopy: 'net' }), roomy).copy).toBe('net');
    expect(checkpointCopyPlan(cfg({ checkpointEvery: 0 }), roomy)).toEqual({ copy: 'net', why: 'no checkpoints' });
    expect(checkpointCopyPlan(cfg({ workers: 8, spawn: 4 }), roomy)).toMatchObject({ copy: 'net', why: expect.stringMatching(/4 of the 8 workers are not spawned here/) });
    expect(checkpointCopyPlan(cfg({ link: { latencyUs: 50, bandwidth: 0, intraBandwidth: 0 } }), roomy)).toMatchObject({ copy: 'net', why: expect.stringMatching(/emulated/) });
    expect(checkpointCopyPlan(cfg({}), null)).toMatchObject({ copy: 'net', why: expect.stringMatching(/no \/dev\/shm/) });
    const c = cfg({});
    expect(checkpointCopyPlan(c, 2 * need(c)).copy).toBe('shm');
    expect(checkpointCopyPlan(c, 2 * need(c) - 1)).toMatchObject({ copy: 'net', why: expect.stringMatching(/free/) });
  });

  it('shm asked for: a usage error where it cannot be, and kept under an emulated link', () => {
    expect(() => checkpointCopyPlan(cfg({ checkpointCopy: 'shm', workers: 8, spawn: 0 }), roomy)).toThrow(/--checkpoint-copy shm: 8 of the 8 workers/);
    expect(() => checkpointCopyPlan(cfg({ checkpointCopy: 'shm' }), null)).toThrow(/--checkpoint-copy shm: this host has no/);
    expect(checkpointCopyPlan(cfg({ checkpointCopy: 'shm', link: { latencyUs: 50, bandwidth: 1e9, intraBandwidth: 0 } }), roomy).copy).toBe('shm');
  });
});
