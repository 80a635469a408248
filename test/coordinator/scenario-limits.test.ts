// Bounds on what a scenario may cost: the file's size, the faults it may hold once expanded, and
// how long its error message may grow (issue 9: a 48 MB file ran the heap out; a 4.75 MB bad file
// printed one 6.9 MB line).
import { describe, expect, it } from 'vitest';
import {
  checkScenarioSize,
  expandScenario,
  expandStragglers,
  MAX_LISTED_ISSUES,
  MAX_SCENARIO_BYTES,
  MAX_SCENARIO_FAULTS,
  parseScenario,
  scenarioForRun,
  ScenarioError,
  type Fault,
  type Scenario,
  type StragglerFault,
} from '../../src/coordinator/scenario/index.js';

function thrown(f: () => unknown): ScenarioError {
  try {
    f();
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  throw new Error('expected a ScenarioError');
}

const kills = (n: number): Fault[] => Array.from({ length: n }, (_, i) => ({ id: i, kind: 'kill', rank: 0, at: { step: 1 + i } }));

describe('the size of a scenario file', () => {
  it('is at most 1 MiB, refused before reading with the limit and the size named', () => {
    expect(MAX_SCENARIO_BYTES).toBe(2 ** 20);
    expect(() => checkScenarioSize(MAX_SCENARIO_BYTES, 'ok.yaml')).not.toThrow();
    const e = thrown(() => checkScenarioSize(48_000_000, 'big.yaml'));
    expect(e.message).toBe(
      'big.yaml: (root): the file is 45.8 MiB (48000000 bytes); a scenario file may be at most 1 MiB (1048576 bytes): use a random entry to draw many faults',
    );
  });

  it('is checked on the text too, in UTF-8 bytes', () => {
    expect(() => parseScenario(`faults: []\n#${'x'.repeat(MAX_SCENARIO_BYTES)}\n`, 'a.yaml')).toThrow(/may be at most 1 MiB/);
    // Fewer characters than the limit, more bytes: é is two bytes in UTF-8.
    const text = `faults: []\n#${'é'.repeat(MAX_SCENARIO_BYTES / 2)}\n`;
    expect(text.length).toBeLessThan(MAX_SCENARIO_BYTES);
    expect(() => parseScenario(text, 'b.yaml')).toThrow(`(${MAX_SCENARIO_BYTES + 13} bytes)`);
    expect(parseScenario(`faults: []\n#${'é'.repeat(MAX_SCENARIO_BYTES / 2 - 20)}\n`, 'c.yaml').faults).toEqual([]);
  });
});

describe('the issues a ScenarioError lists', () => {
  it('are the first 10, then how many more', () => {
    const issues = Array.from({ length: 25 }, (_, i) => `faults[${i}]: bad`);
    const e = new ScenarioError('s.yaml', issues);
    expect(MAX_LISTED_ISSUES).toBe(10);
    expect(e.issues).toEqual(issues.slice(0, 10));
    expect(e.more).toBe(15);
    expect(e.message).toBe(`s.yaml: ${issues.slice(0, 10).join('; ')}; ... and 15 more`);
    expect(new ScenarioError('s.yaml', issues.slice(0, 10)).message).not.toContain('more');
  });

  it('keep a bad file of 100,000 entries to one short line', () => {
    const text = `{"faults": [${Array.from({ length: 100_000 }, () => '1').join(',')}]}`;
    const e = thrown(() => parseScenario(text, 'bad.json'));
    expect(e.issues).toHaveLength(10);
    expect(e.more).toBe(99_990);
    expect(e.message).toMatch(/; \.\.\. and 99990 more$/);
    expect(e.message.length).toBeLessThan(2000);
  });

  it('cut a huge key or value quoted in an issue', () => {
    const e = thrown(() => parseScenario(`{"faults": [], "${'k'.repeat(500_000)}": 1}`, 'key.json'));
    expect(e.message.length).toBeLessThan(500);
    expect(e.message).toContain('unknown field (the file takes faults)');
    const f = thrown(() => parseScenario(`{"faults": [{"kind": "kill", "rank": 1, "at": {"step": 1}, "${'k'.repeat(500_000)}": 1}]}`, 'key.json'));
    expect(f.message.length).toBeLessThan(500);
    expect(f.message).toContain('unknown field (a kill fault takes kind, rank, at)');
  });
});

describe('the faults a scenario may hold', () => {
  const run = { seed: 1, workers: 4, steps: 300_000 };
  const scenario = (s: Partial<Scenario>): Scenario => ({ faults: [], random: [], stragglers: [], ...s });

  it('are at most 100,000 faults written out', () => {
    expect(MAX_SCENARIO_FAULTS).toBe(100_000);
    expect(expandScenario(scenario({ faults: kills(MAX_SCENARIO_FAULTS) }), run)).toHaveLength(MAX_SCENARIO_FAULTS);
    expect(thrown(() => expandScenario(scenario({ faults: kills(MAX_SCENARIO_FAULTS + 1) }), { ...run, source: 'x.yaml' })).message).toBe(
      'x.yaml: (root): 100001 faults; a scenario may hold at most 100000',
    );
  });

  it('are at most 100,000 stragglers', () => {
    const slow = (n: number): StragglerFault[] => Array.from({ length: n }, (_, i) => ({ id: i, kind: 'slow', rank: 0, at: { step: 1 }, addMs: 5 }));
    expect(expandStragglers(scenario({ stragglers: slow(MAX_SCENARIO_FAULTS) }), { workers: 4 })).toHaveLength(MAX_SCENARIO_FAULTS);
    expect(() => expandStragglers(scenario({ stragglers: slow(MAX_SCENARIO_FAULTS + 1) }), { workers: 4 })).toThrow('at most 100000');
  });

  it('refuses a random spec that would draw past the limit, alone or with the others', () => {
    // A fault every step for 300,000 steps.
    const e = thrown(() => scenarioForRun([scenario({ random: [{ meanSteps: 1, kinds: ['kill'] }] })], run, 'r.yaml'));
    expect(e.message).toBe(
      'r.yaml: random (meanSteps 1 over 300000 steps): draws more than 100000 faults, past the 100000 a scenario may hold with its other faults: raise meanSteps or run fewer steps',
    );
    // Each fits alone (about 60,000 draws), not together.
    const two = scenario({ random: [{ meanSteps: 5, kinds: ['kill'] }, { meanSteps: 5, kinds: ['hang'] }] });
    expect(expandScenario(scenario({ random: [two.random[0]!] }), run).length).toBeGreaterThan(50_000);
    expect(() => scenarioForRun([two], run, 'r.yaml')).toThrow(/draws more than \d+ faults/);
    // Written-out faults count against the random draws.
    expect(() => expandScenario(scenario({ faults: kills(50_000), random: [{ meanSteps: 5, kinds: ['kill'] }] }), run)).toThrow(/draws more than 50000 faults/);
    // Within the limit, all is drawn.
    expect(scenarioForRun([scenario({ random: [{ meanSteps: 4, kinds: ['kill'] }] })], run, 'r.yaml').faults.length).toBeGreaterThan(70_000);
  });
});
