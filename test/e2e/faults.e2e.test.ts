// Faults with real processes: each run must end with the fault-free digest, and leave nothing behind.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { childrenOf, isAlive, killLeftovers, runCli, startCli } from './helpers.js';

afterEach(() => killLeftovers());

// The ring (auto would pick recursive doubling at this size): links are located per ring link.
const BASE = ['run', '-w', '4', '-g', '2', '-s', '16KiB', '--steps', '10', '--timeout-ms', '1500', '--algo', 'ring', '--json', '-'];
let cleanDigest = '';
const dir = mkdtempSync(join(tmpdir(), 'ringswarm-faults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  const r = await runCli(BASE);
  expect(r.code, r.stderr).toBe(0);
  cleanDigest = JSON.parse(r.stdout).stateDigest;
});

async function withFault(...extra: string[]) {
  const r = await runCli([...BASE, ...extra]);
  const rep = JSON.parse(r.stdout);
  for (const p of rep.processes) expect(isAlive(p.pid), `pid ${p.pid} left running`).toBe(false);
  return { r, rep };
}

describe('faults, real processes', () => {
  it('SIGKILL in the middle of a reduce-scatter: detected by exit, restarted, exact', async () => {
    const { r, rep } = await withFault('--inject', 'kill:rank=2:step=4:phase=reduce-scatter:chunk=1');
    expect(r.code, r.stderr).toBe(0);
    expect(rep.stateDigest).toBe(cleanDigest);
    expect(rep.faults).toHaveLength(1);
    expect(rep.faults[0]).toMatchObject({ kind: 'kill', rank: 2, atStep: 4, phase: 'reduce-scatter', injected: true, detectedBy: 'exit', located: 'rank 2', restoredFrom: 'memory', lostSteps: 0 });
    // By default here the copies are in shared memory: 4 workers x 3 slots x (2 cards x 16 KiB + a page), the replacement's slots beside.
    expect(r.stderr).toMatch(/checkpoint copies: shared memory \(\/dev\/shm\/ringswarm-\d+-\w+\): every worker is on this host/);
    expect(rep.memory.checkpointSlotsMB).not.toBeNull();
    expect(rep.faults[0].recoveredAfterMs).toBeGreaterThan(0);
    expect(rep.epochs).toHaveLength(2);
    expect(rep.epochs[1].members.find((m: { rank: number }) => m.rank === 2).workerId).not.toBe('w2');
    expect(rep.restarts).toBe(1);
  });

  it('the same kill with the checkpoint copies sent as frames (--checkpoint-copy net): the replacement restores from the copy, exact', async () => {
    const { r, rep } = await withFault('--inject', 'kill:rank=2:step=4:phase=reduce-scatter:chunk=1', '--checkpoint-copy', 'net');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/checkpoint copies: frames over the links: --checkpoint-copy net/);
    expect(rep.stateDigest).toBe(cleanDigest);
    expect(rep.faults[0]).toMatchObject({ kind: 'kill', rank: 2, restoredFrom: 'memory', lostSteps: 0 });
    expect(rep.memory.checkpointSlotsMB).toBeNull();
  });

  it('a hang just past the heartbeat timeout (the long soak stall): the others train on before the abort reaches them, and the recovery still rings up', async () => {
    // Rank 5 thaws during the settle window; before the abort arrives the others take more
    // checkpoints, whose reports the new epoch drops. The coordinator once resumed from a checkpoint
    // they had already pruned: "no checkpoint of step 6 in memory", 5 ring-ups in a row.
    const r = await runCli(['run', '-w', '16', '-g', '8', '-s', '16KiB', '--steps', '20', '--timeout-ms', '2000', '--json', '-', '--inject', 'hang:rank=5:step=5:ms=1101']);
    const rep = JSON.parse(r.stdout);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/did not ring up/);
    expect(rep.faults[0]).toMatchObject({ kind: 'hang', rank: 5, detectedBy: 'heartbeat', struck: true });
    expect(rep.epochs).toHaveLength(2);
  });

  it('SIGSTOP for good: found silent, replaced, exact', async () => {
    const { r, rep } = await withFault('--inject', 'hang:rank=1:step=3', '--timeout-ms', '5000');
    expect(r.code, r.stderr).toBe(0);
    expect(rep.stateDigest).toBe(cleanDigest);
    expect(rep.faults[0]).toMatchObject({ kind: 'hang', rank: 1, detectedBy: 'heartbeat', located: 'rank 1' });
  });

  it('a cut link: the watchdog fires, the link is named, all roll back, exact', async () => {
    const { r, rep } = await withFault('--inject', 'link:from=2:step=5:cut=true:ms=500');
    expect(r.code, r.stderr).toBe(0);
    expect(rep.stateDigest).toBe(cleanDigest);
    expect(rep.faults[0]).toMatchObject({ kind: 'link', link: [2, 3], detectedBy: 'watchdog', located: 'link 2->3', action: 'rollback' });
  });

  it('a corrupt frame: caught by its checksum, never applied, exact', async () => {
    const { r, rep } = await withFault('--inject', 'corrupt:rank=1:step=6:frames=2');
    expect(r.code, r.stderr).toBe(0);
    expect(rep.stateDigest).toBe(cleanDigest);
    expect(rep.wrong).toBe(0);
    expect(rep.faults[0]).toMatchObject({ kind: 'corrupt', detectedBy: 'checksum', located: 'link 1->2' });
  });

  it('a crash at a chosen point, with checkpoints on disk too', async () => {
    const ck = join(dir, 'ck');
    const { r, rep } = await withFault('--inject', 'crash:rank=3:step=7:phase=all-gather:code=3', '--checkpoint-dir', ck);
    expect(r.code, r.stderr).toBe(0);
    expect(rep.stateDigest).toBe(cleanDigest);
    expect(rep.faults[0]).toMatchObject({ kind: 'crash', detectedBy: 'exit' });
  });

  it('a scenario file with several faults', async () => {
    const file = join(dir, 'faults.yaml');
    writeFileSync(
      file,
      ['faults:', '  - kind: kill', '    rank: 0', '    at: { step: 2, phase: all-gather }', '  - kind: corrupt', '    rank: 3', '    at: { step: 6 }'].join('\n'),
    );
    const { r, rep } = await withFault('--scenario', file);
    expect(r.code, r.stderr).toBe(0);
    expect(rep.stateDigest).toBe(cleanDigest);
    expect(rep.faults.map((f: { kind: string; detectedBy: string }) => [f.kind, f.detectedBy])).toEqual([
      ['kill', 'exit'],
      ['corrupt', 'checksum'],
    ]);
    expect(rep.goodput.ratio).toBeGreaterThan(0);
    expect(rep.goodput.ratio).toBeLessThanOrEqual(1);
  });

  it.each(['restart', 'shrink'])('under recursive doubling too: a kill late in the op, --on-failure %s, exact', async (policy) => {
    // Partners that do not need the killed rank any more finish the step and checkpoint the next:
    // the resume point must still be a step every rank reported.
    const { r, rep } = await withFault('--algo', 'rd', '--on-failure', policy, '--inject', 'kill:rank=2:step=4:phase=all-gather');
    expect(r.code, r.stderr).toBe(0);
    expect(rep).toMatchObject({ ok: true, wrong: 0, stepsCompleted: 10, algo: ['rd'] });
    expect(rep.faults[0]).toMatchObject({ kind: 'kill', rank: 2, detectedBy: 'exit', located: 'rank 2' });
    if (policy === 'restart') expect(rep.stateDigest).toBe(cleanDigest);
  });

  it('under recursive doubling, a cut link is located by who waits for whom', async () => {
    // Rank 2's ring successor, 3, is also its partner at the first doubling step.
    const { r, rep } = await withFault('--algo', 'rd', '--inject', 'link:from=2:step=5:cut=true:ms=500');
    expect(r.code, r.stderr).toBe(0);
    expect(rep.stateDigest).toBe(cleanDigest);
    expect(rep.faults[0]).toMatchObject({ kind: 'link', detectedBy: 'watchdog', located: 'link 2->3' });
  });

  it('under the tree: a kill as the result comes down, restarted, exact; a cut link located by who waits for whom', async () => {
    // 4 workers: 0 is the root, 2 takes 3's partial and hands 0 its own, 1 hands 0 its own.
    const kill = await withFault('--algo', 'tree', '--inject', 'kill:rank=2:step=4:phase=all-gather');
    expect(kill.r.code, kill.r.stderr).toBe(0);
    expect(kill.rep).toMatchObject({ ok: true, wrong: 0, stepsCompleted: 10, algo: ['tree'], stateDigest: cleanDigest });
    expect(kill.rep.faults[0]).toMatchObject({ kind: 'kill', rank: 2, struck: true, detectedBy: 'exit', located: 'rank 2', restoredFrom: 'memory' });
    const cut = await withFault('--algo', 'tree', '--inject', 'link:from=3:to=2:step=5:cut=true:ms=500');
    expect(cut.r.code, cut.r.stderr).toBe(0);
    expect(cut.rep.stateDigest).toBe(cleanDigest);
    expect(cut.rep.faults[0]).toMatchObject({ kind: 'link', struck: true, detectedBy: 'watchdog', located: 'link 3->2' });
  });

  it('a kill in the last step, after the others said done: the step is redone, exact', async () => {
    // 16 workers: most finish the step (and the job) before the kill is seen. (Their old 'done' once
    // counted toward the new epoch's, and the run ended 'incomplete'; a race, not caught every time.)
    const args = ['run', '-w', '16', '-g', '1', '-s', '16KiB', '--steps', '6', '--algo', 'rd', '--json', '-'];
    const clean = JSON.parse((await runCli(args)).stdout);
    const r = await runCli([...args, '--inject', 'kill:rank=12:step=5:phase=all-gather']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep).toMatchObject({ ok: true, wrong: 0, stepsCompleted: 6 });
    expect(rep.stateDigest).toBe(clean.stateDigest);
  });

  it('a harmless fault does not take the detection of a later one', async () => {
    // A 20 ms delay for 200 ms trips nothing; the crash after it is what the exit detects.
    const { r, rep } = await withFault('--steps', '16', '--inject', 'link:from=0:step=3:delayMs=20:ms=200', '--inject', 'crash:rank=3:step=8');
    expect(r.code, r.stderr).toBe(0);
    expect(rep.stateDigest).not.toBeNull();
    const crash = rep.faults.find((f: { kind: string }) => f.kind === 'crash');
    expect(crash).toMatchObject({ rank: 3, detectedBy: 'exit', located: 'rank 3' });
    expect(rep.faults.find((f: { kind: string }) => f.kind === 'link')).toMatchObject({ detectedBy: null });
  });

  it('a kill -9 from outside the tool is detected and healed the same way', async () => {
    const run = startCli(['run', '-w', '4', '-g', '1', '-s', '4KiB', '--steps', '30', '--compute-ms', '20', '--json', '-']);
    await run.waitFor(/ready in/);
    await new Promise((r) => setTimeout(r, 300));
    const victim = childrenOf(run.child.pid!)[1];
    process.kill(victim, 'SIGKILL');
    const { code } = await run.exited;
    expect(code, run.stderr()).toBe(0);
    const rep = JSON.parse(run.stdout());
    expect(rep.ok).toBe(true);
    expect(rep.faults).toHaveLength(1);
    expect(rep.faults[0]).toMatchObject({ injected: false, detectedBy: 'exit' });
    const clean = JSON.parse((await runCli(['run', '-w', '4', '-g', '1', '-s', '4KiB', '--steps', '30', '--json', '-'])).stdout);
    expect(rep.stateDigest).toBe(clean.stateDigest);
  });

  it('--on-failure spare hands the rank to a standby started at launch', async () => {
    const { r, rep } = await withFault('--inject', 'kill:rank=1:step=3:phase=all-gather', '--on-failure', 'spare', '--spares', '1');
    expect(r.code, r.stderr).toBe(0);
    expect(rep.stateDigest).toBe(cleanDigest);
    expect(rep.faults[0].action).toBe('spare rank 1');
    expect(rep.epochs[1].members[1].workerId).toBe('spare0');
  });

  it.each(['sum', 'avg', 'prod'])('--on-failure shrink (%s): the ring closes over the lost rank, exact against the cards left', async (op) => {
    const { r, rep } = await withFault('--inject', 'kill:rank=2:step=4:phase=all-gather', '--on-failure', 'shrink', '--op', op, '--dtype', op === 'prod' ? 'i32' : 'f32');
    expect(r.code, r.stderr).toBe(0);
    expect(rep).toMatchObject({ ok: true, wrong: 0, stepsCompleted: 10 });
    expect(rep.faults[0].action).toMatch(/^shrink to 3 workers \(cards 4\.\.5 stop contributing\)/);
    expect(rep.epochs.map((e: { cards: number }) => e.cards)).toEqual([8, 6]);
  });

  it('--on-failure abort stops with a report', async () => {
    const { r, rep } = await withFault('--inject', 'kill:rank=1:step=3', '--on-failure', 'abort');
    expect(r.code).toBe(1);
    expect(rep.ok).toBe(false);
    expect(rep.faults[0].action).toBe('abort');
  });

  it.each([
    [['--inject', 'kill:rank=9:step=1'], /rank.*9 is not a rank/],
    [['--inject', 'kill:rank=1:step=1.5'], /--inject\[0\]\.at\.step: expected an integer >= 0/],
    [['--inject', 'explode:rank=1:step=1'], /kind/],
  ])('refuses bad faults %j with status 2', async (args, message) => {
    const r = await runCli([...BASE, ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('refuses a bad scenario file naming the path of the bad field', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'faults:\n  - kind: kill\n    rank: 1\n    at: { step: 1 }\n  - kind: hang\n    rank: 1\n    at: { step: 2 }\n  - kind: kill\n    rank: 1\n    at: { step: -2 }\n');
    const r = await runCli([...BASE, '--scenario', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/faults\[2\]\.at\.step: expected an integer >= 0/);
  });
});
