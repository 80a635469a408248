// Real runs replay (issue: "real runs replay too"): two runs with the same flags and scenario, random
// faults included, give the same faults[] timeline, whatever the machine's timing does to the order
// in which the coordinator hears of them. Both runs go at once, so they do not share their timing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { FaultReport } from '../../src/coordinator/config.js';
import { killLeftovers, runCli } from './helpers.js';

afterEach(() => killLeftovers());

const dir = mkdtempSync(join(tmpdir(), 'ringswarm-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The fields the issue asks to replay: the millisecond ones aside (and `located`, which names the receiver of a corrupt frame: see below). */
const timeline = (faults: FaultReport[]) =>
  faults.map((f) => ({
    kind: f.kind,
    ...(f.link ? { link: f.link } : { rank: f.rank }),
    atStep: f.atStep,
    phase: f.phase,
    injected: f.injected,
    struck: f.struck,
    detectedBy: f.detectedBy,
    action: f.action,
    restoredFrom: f.restoredFrom,
    lostSteps: f.lostSteps,
  }));

function report(stdout: string) {
  return JSON.parse(stdout.slice(stdout.indexOf('{')));
}

describe('real runs replay', () => {
  it('the same seed and scenario with random faults, twice at once: the same faults[] timeline', async () => {
    // Seed 7 draws, on 4 workers over 8 steps: a corrupt frame at the end of step 4 (it spoils step 5's
    // frames) and a crash in step 5, in one op, whose signs race each other; a kill at step 6; a hang
    // of 1243 ms (past the 1000 ms heartbeat deadline, thawed while the recovery is under way) at 7.
    const file = join(dir, 'random.json');
    writeFileSync(file, JSON.stringify({ faults: [{ kind: 'random', meanSteps: 3, kinds: ['kill', 'hang', 'crash', 'link', 'corrupt'] }] }));
    const args = ['run', '-w', '4', '-g', '1', '-s', '16KiB', '--steps', '8', '--seed', '7', '--scenario', file, '--json', '-'];
    const runs = await Promise.all([runCli(args), runCli(args)]);
    const [a, b] = runs.map((r) => {
      expect(r.code, r.stderr).toBe(0);
      return report(r.stdout);
    });
    // On a mismatch, both runs' logs: the order of what each coordinator heard is the first clue.
    const logs = runs.map((r, i) => `--- run ${i + 1} stderr ---\n${r.stderr}`).join('\n');
    expect(timeline(a.faults), logs).toEqual(timeline(b.faults));
    expect(a.stateDigest).toBe(b.stateDigest);
    expect(timeline(a.faults), logs).toEqual([
      { kind: 'corrupt', rank: 3, atStep: 4, phase: 'all-gather', injected: true, struck: true, detectedBy: 'checksum', action: 'rollback', restoredFrom: 'memory', lostSteps: 0 },
      { kind: 'crash', rank: 0, atStep: 5, phase: 'reduce-scatter', injected: true, struck: true, detectedBy: 'exit', action: 'restart rank 0', restoredFrom: 'memory', lostSteps: 0 },
      { kind: 'kill', rank: 1, atStep: 6, phase: 'reduce-scatter', injected: true, struck: true, detectedBy: 'exit', action: 'restart rank 1', restoredFrom: 'memory', lostSteps: 0 },
      { kind: 'hang', rank: 2, atStep: 7, phase: 'reduce-scatter', injected: true, struck: true, detectedBy: 'heartbeat', action: 'restart rank 2', restoredFrom: 'memory', lostSteps: 0 },
    ]);
    // Not replayed: which rank a corrupt frame reached first (the frames a rank sends after the
    // fault strikes depend on when its partners' frames came in): of `located`, only the sender is.
    expect(a.faults[0].located).toMatch(/^link 3->\d$/);
  }, 120_000);
});
