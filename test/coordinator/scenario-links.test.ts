// Links in scenarios are directed pairs of workers (issue 9, item 2): `from` and an optional `to`,
// by default `from`'s successor in the launch ring, so files written before `to` keep their meaning.
import { describe, expect, it } from 'vitest';
import {
  defaultLinkTo,
  expandRandom,
  expandScenario,
  expandStragglers,
  parseInjects,
  parseScenario,
  scenarioForRun,
  validateAgainst,
  ScenarioError,
} from '../../src/coordinator/scenario/index.js';

function issuesOf(text: string): string[] {
  try {
    parseScenario(text, 's.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) return e.issues;
    throw e;
  }
  throw new Error('expected a ScenarioError');
}

const YAML = `faults:
  - { kind: link, from: 2, to: 5, at: { step: 3 }, cut: true }
  - { kind: link, from: 7, at: { step: 4 }, delayMs: 20 }
  - { kind: slow-link, from: 1, to: 0, at: { step: 2 }, bandwidth: 1MiB }
  - { kind: slow-link, from: 7, at: { step: 2 }, delayMs: 5 }
`;

describe('link faults and slow links', () => {
  it('take an optional to; written without it, a link goes to the successor in the launch ring', () => {
    const s = parseScenario(YAML, 's.yaml');
    expect(s.faults).toStrictEqual([
      { id: 0, kind: 'link', from: 2, to: 5, at: { step: 3 }, cut: true },
      { id: 1, kind: 'link', from: 7, at: { step: 4 }, cut: false, delayMs: 20 },
    ]);
    const run = { seed: 1, workers: 8, steps: 10 };
    expect(validateAgainst(s, run)).toEqual([]);
    // After expansion every link has both ends: 7's successor in a ring of 8 is 0.
    expect(expandScenario(s, run).map((f) => f.kind === 'link' && [f.from, f.to])).toEqual([
      [2, 5],
      [7, 0],
    ]);
    expect(expandStragglers(s, { workers: 8 }).map((f) => f.kind === 'slow-link' && [f.from, f.to])).toEqual([
      [1, 0],
      [7, 0],
    ]);
    expect(defaultLinkTo(3, 8)).toBe(4);
    expect(defaultLinkTo(3, 4)).toBe(0);
  });

  it('take to= in the shorthand', () => {
    const s = parseInjects(['link:from=2:to=5:step=3:cut=true', 'slow-link:from=1:to=0:step=2:bandwidth=1MiB']);
    expect(s.faults).toStrictEqual([{ id: 0, kind: 'link', from: 2, to: 5, at: { step: 3 }, cut: true }]);
    expect(s.stragglers).toStrictEqual([{ id: 1, kind: 'slow-link', from: 1, to: 0, at: { step: 2 }, bandwidth: 2 ** 20 }]);
  });

  it('refuse a link from a rank to itself, a to that is not a rank, and to on other kinds', () => {
    expect(issuesOf('faults:\n  - { kind: link, from: 2, to: 2, at: { step: 3 }, cut: true }\n')).toEqual([
      'faults[0].to: expected another rank than from (2): a link joins two workers',
    ]);
    expect(issuesOf('faults:\n  - { kind: slow-link, from: 1, to: -1, at: { step: 3 }, delayMs: 5 }\n')).toEqual(['faults[0].to: expected an integer >= 0 (got -1)']);
    expect(issuesOf('faults:\n  - { kind: kill, rank: 1, to: 2, at: { step: 3 } }\n')).toEqual(['faults[0].to: unknown field (a kill fault takes kind, rank, at)']);
    const s = parseInjects(['link:from=2:to=8:step=3:cut=true', 'slow-link:from=1:to=9:step=2:delayMs=5']);
    expect(validateAgainst(s, { workers: 8, steps: 10 })).toEqual(['--inject[0].to: 8 is not a rank (0..7)', '--inject[1].to: 9 is not a rank (0..7)']);
    expect(() => scenarioForRun([s], { seed: 1, workers: 8, steps: 10 }, '--inject')).toThrow('--inject: --inject[0].to: 8 is not a rank (0..7)');
  });

  it('are drawn at random among all directed pairs, from the seed', () => {
    const o = { seed: 5, workers: 4, steps: 60_000, firstId: 0 };
    const links = expandRandom({ meanSteps: 5, kinds: ['link'] }, o);
    const pairs = new Map<string, number>();
    for (const f of links) {
      if (f.kind !== 'link') throw new Error('a link spec drew another kind');
      expect(f.to).not.toBe(f.from);
      expect(f.to >= 0 && f.to < o.workers).toBe(true);
      pairs.set(`${f.from}>${f.to}`, (pairs.get(`${f.from}>${f.to}`) ?? 0) + 1);
    }
    // 4 workers: 12 directed pairs, each about as often as the others (not only successors).
    expect(pairs.size).toBe(12);
    for (const n of pairs.values()) expect(Math.abs(n - links.length / 12) / (links.length / 12)).toBeLessThan(0.15);
    expect(expandRandom({ meanSteps: 5, kinds: ['link'] }, o)).toStrictEqual(links);
    // One worker has no links: a link-only spec draws nothing, a mixed one draws the other kinds.
    expect(expandRandom({ meanSteps: 2, kinds: ['link'] }, { ...o, workers: 1, steps: 100 })).toEqual([]);
    expect(expandRandom({ meanSteps: 2, kinds: ['link', 'kill'] }, { ...o, workers: 1, steps: 100 }).every((f) => f.kind === 'kill')).toBe(true);
  });
});
