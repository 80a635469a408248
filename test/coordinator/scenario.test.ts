import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  FAULT_KINDS,
  PHASES,
  ScenarioError,
  expandRandom,
  STRAGGLER_KINDS,
  expandScenario,
  expandStragglers,
  mergeScenarios,
  parseInject,
  parseInjects,
  parseScenario,
  validateAgainst,
  type Fault,
  type FaultKind,
  type RandomSpec,
  type Scenario,
  type StragglerFault,
} from '../../src/coordinator/scenario/index.js';

/** The issues parseScenario throws for `text`, or a failure if it does not throw a ScenarioError. */
function issuesOf(text: string, fileName = 'scenario.yaml'): string[] {
  try {
    parseScenario(text, fileName);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).issues;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be rejected`);
}

function injectIssuesOf(specs: string[]): string[] {
  try {
    parseInjects(specs);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).issues;
  }
  throw new Error(`expected ${JSON.stringify(specs)} to be rejected`);
}

/** A scenario file with one entry, written as YAML lines under `faults:`. */
const one = (entry: string) => `faults:\n  - ${entry.trim().split('\n').join('\n    ')}\n`;

const EXAMPLE_YAML = `
faults:
  - kind: kill            # SIGKILL the worker process
    rank: 3
    at: { step: 4, phase: reduce-scatter, chunk: 1 }
  - kind: hang            # SIGSTOP it, for ms or (omitted) for good
    rank: 5
    at: { step: 6 }
    ms: 3000
  - kind: crash           # the worker exits by itself with code (default 1)
    rank: 2
    at: { step: 3, phase: all-gather }
    code: 3
  - kind: link
    from: 2
    at: { step: 8 }
    cut: true
    ms: 1000
  - kind: corrupt
    rank: 1
    at: { step: 9 }
    frames: 2
  - kind: random          # faults drawn from the run's seed
    meanSteps: 10
    kinds: [kill, hang, crash, link, corrupt]
`;

const EXAMPLE_JSON = JSON.stringify(
  {
    faults: [
      { kind: 'kill', rank: 3, at: { step: 4, phase: 'reduce-scatter', chunk: 1 } },
      { kind: 'hang', rank: 5, at: { step: 6 }, ms: 3000 },
      { kind: 'crash', rank: 2, at: { step: 3, phase: 'all-gather' }, code: 3 },
      { kind: 'link', from: 2, at: { step: 8 }, cut: true, ms: 1000 },
      { kind: 'corrupt', rank: 1, at: { step: 9 }, frames: 2 },
      { kind: 'random', meanSteps: 10, kinds: ['kill', 'hang', 'crash', 'link', 'corrupt'] },
    ],
  },
  null,
  2,
);

const EXAMPLE: Scenario = {
  faults: [
    { id: 0, kind: 'kill', rank: 3, at: { step: 4, phase: 'reduce-scatter', chunk: 1 } },
    { id: 1, kind: 'hang', rank: 5, at: { step: 6 }, ms: 3000 },
    { id: 2, kind: 'crash', rank: 2, at: { step: 3, phase: 'all-gather' }, code: 3 },
    { id: 3, kind: 'link', from: 2, at: { step: 8 }, cut: true, ms: 1000 },
    { id: 4, kind: 'corrupt', rank: 1, at: { step: 9 }, frames: 2 },
  ],
  random: [{ meanSteps: 10, kinds: ['kill', 'hang', 'crash', 'link', 'corrupt'] }],
  origins: ['faults[0]', 'faults[1]', 'faults[2]', 'faults[3]', 'faults[4]'],
  stragglers: [],
  stragglerOrigins: [],
};

describe('parseScenario: accepted files', () => {
  it.each([
    ['scenario.yaml', EXAMPLE_YAML],
    ['scenario.yml', EXAMPLE_YAML],
    ['scenario.json', EXAMPLE_JSON],
    ['scenario.txt', EXAMPLE_JSON],
    ['scenario', EXAMPLE_YAML],
    ['dir.v2/SCENARIO.YAML', EXAMPLE_YAML],
  ])('%s parses the documented example to its normalised faults', (name, text) => {
    expect(parseScenario(text, name)).toStrictEqual(EXAMPLE);
  });

  it.each<[string, string, Fault]>([
    ['crash code defaults to 1', 'kind: crash\nrank: 2\nat: { step: 3 }', { id: 0, kind: 'crash', rank: 2, at: { step: 3 }, code: 1 }],
    ['corrupt frames default to 1', 'kind: corrupt\nrank: 0\nat: { step: 1 }', { id: 0, kind: 'corrupt', rank: 0, at: { step: 1 }, frames: 1 }],
    ['a hang without ms is for good', 'kind: hang\nrank: 5\nat: { step: 6 }', { id: 0, kind: 'hang', rank: 5, at: { step: 6 } }],
    ['a time trigger', 'kind: kill\nrank: 0\nat: { ms: 2500 }', { id: 0, kind: 'kill', rank: 0, at: { ms: 2500 } }],
    ['a time trigger at 0', 'kind: kill\nrank: 0\nat: { ms: 0 }', { id: 0, kind: 'kill', rank: 0, at: { ms: 0 } }],
    [
      'a link delay',
      'kind: link\nfrom: 2\nat: { step: 8 }\ndelayMs: 50',
      { id: 0, kind: 'link', from: 2, at: { step: 8 }, cut: false, delayMs: 50 },
    ],
    [
      'a link bandwidth as a size',
      'kind: link\nfrom: 2\nat: { step: 8 }\nbandwidth: 10MiB\nms: 1000',
      { id: 0, kind: 'link', from: 2, at: { step: 8 }, cut: false, bandwidth: 10 * 1024 * 1024, ms: 1000 },
    ],
    [
      'a link bandwidth as a number, with a delay',
      'kind: link\nfrom: 0\nat: { step: 1 }\nbandwidth: 1500\ndelayMs: 20',
      { id: 0, kind: 'link', from: 0, at: { step: 1 }, cut: false, bandwidth: 1500, delayMs: 20 },
    ],
    [
      'cut: false with a delay',
      'kind: link\nfrom: 0\nat: { step: 1 }\ncut: false\ndelayMs: 20',
      { id: 0, kind: 'link', from: 0, at: { step: 1 }, cut: false, delayMs: 20 },
    ],
  ])('%s', (_, entry, fault) => {
    expect(parseScenario(one(entry), 's.yaml').faults).toStrictEqual([fault]);
  });

  it('keeps random entries apart: ids count faults only, origins name the entry in the file', () => {
    const s = parseScenario(
      'faults:\n  - { kind: random, meanSteps: 4 }\n  - { kind: kill, rank: 1, at: { step: 2 } }\n  - { kind: random, meanSteps: 2.5, kinds: [link, link, kill] }\n  - { kind: hang, rank: 0, at: { step: 3 } }\n',
      's.yaml',
    );
    expect(s).toStrictEqual({
      faults: [
        { id: 0, kind: 'kill', rank: 1, at: { step: 2 } },
        { id: 1, kind: 'hang', rank: 0, at: { step: 3 } },
      ],
      // Without kinds, every kind; a repeated kind weighs more.
      random: [
        { meanSteps: 4, kinds: [...FAULT_KINDS] },
        { meanSteps: 2.5, kinds: ['link', 'link', 'kill'] },
      ],
      origins: ['faults[1]', 'faults[3]'],
      stragglers: [],
      stragglerOrigins: [],
    });
  });

  it('reads an empty list, and a faults key with every entry commented out, as no faults', () => {
    const none = { faults: [], random: [], origins: [], stragglers: [], stragglerOrigins: [] };
    expect(parseScenario('faults: []\n', 's.yaml')).toStrictEqual(none);
    expect(parseScenario('faults:\n#  - kind: kill\n', 's.yaml')).toStrictEqual(none);
    expect(parseScenario('{"faults": []}', 's.json')).toStrictEqual(none);
  });

  it('accepts a byte order mark', () => {
    expect(parseScenario('\uFEFF{"faults": []}', 's.json').faults).toEqual([]);
  });
});

describe('parseScenario: rejected files name the path and what is accepted', () => {
  it.each<[string, string, string[]]>([
    ['a word for a rank', 'kind: kill\nrank: three\nat: { step: 1 }', ['faults[0].rank: expected an integer >= 0 (got "three")']],
    ['a negative rank', 'kind: kill\nrank: -1\nat: { step: 1 }', ['faults[0].rank: expected an integer >= 0 (got -1)']],
    ['a list for a rank', 'kind: kill\nrank: [1, 2]\nat: { step: 1 }', ['faults[0].rank: expected an integer >= 0 (got a list)']],
    ['a missing rank', 'kind: corrupt\nat: { step: 1 }', ['faults[0].rank: required (an integer >= 0)']],
    ['a fractional step', 'kind: kill\nrank: 1\nat: { step: 1.5 }', ['faults[0].at.step: expected an integer >= 0 (got 1.5)']],
    ['a negative step', 'kind: kill\nrank: 1\nat: { step: -2 }', ['faults[0].at.step: expected an integer >= 0 (got -2)']],
    ['a step as a string', 'kind: kill\nrank: 1\nat: { step: "4" }', ['faults[0].at.step: expected an integer >= 0 (got "4")']],
    [
      'an unknown kind',
      'kind: explode\nrank: 1',
      ['faults[0].kind: expected one of kill, hang, crash, link, corrupt, slow, slow-link, jitter, pause, random (got "explode")'],
    ],
    ['a missing kind', 'rank: 1\nat: { step: 1 }', ['faults[0].kind: required (one of kill, hang, crash, link, corrupt, slow, slow-link, jitter, pause, random)']],
    [
      'an unknown field',
      'kind: kill\nrank: 1\nat: { step: 1 }\ncolour: red',
      ['faults[0].colour: unknown field (a kill fault takes kind, rank, at)'],
    ],
    [
      'rank on a link fault',
      'kind: link\nrank: 1\nat: { step: 1 }\ncut: true',
      [
        'faults[0].rank: unknown field (a link fault takes kind, from, to, at, cut, delayMs, bandwidth, ms)',
        'faults[0].from: required (an integer >= 0)',
      ],
    ],
    [
      'an unknown field in the trigger',
      'kind: kill\nrank: 1\nat: { step: 1, round: 2 }',
      ['faults[0].at.round: unknown field (a trigger takes step, phase, chunk, ms)'],
    ],
    ['a missing trigger', 'kind: kill\nrank: 1', ['faults[0].at: required ({ step: N, phase?, chunk? } or { ms: T })']],
    ['a bare number for a trigger', 'kind: kill\nrank: 1\nat: 4', ['faults[0].at: expected { step: N, phase?, chunk? } or { ms: T } (got 4)']],
    ['an empty trigger', 'kind: kill\nrank: 1\nat: {}', ['faults[0].at: needs step or ms ({ step: N, phase?, chunk? } or { ms: T })']],
    ['step and ms', 'kind: kill\nrank: 1\nat: { step: 1, ms: 5 }', ['faults[0].at.ms: not with step (a trigger is a step or a time, not both)']],
    ['a phase with ms', 'kind: kill\nrank: 1\nat: { ms: 5, phase: all-gather }', ['faults[0].at.phase: goes with step, not with ms']],
    ['a negative ms', 'kind: kill\nrank: 1\nat: { ms: -5 }', ['faults[0].at.ms: expected a whole number of milliseconds >= 0 (got -5)']],
    [
      'an unknown phase',
      'kind: kill\nrank: 1\nat: { step: 1, phase: backward }',
      ['faults[0].at.phase: expected reduce-scatter or all-gather (got "backward")'],
    ],
    [
      'a chunk without a phase',
      'kind: kill\nrank: 1\nat: { step: 1, chunk: 0 }',
      ['faults[0].at.chunk: needs a phase too (reduce-scatter or all-gather): chunks are counted within a phase'],
    ],
    [
      'cut with delayMs',
      'kind: link\nfrom: 1\nat: { step: 1 }\ncut: true\ndelayMs: 50',
      ['faults[0].delayMs: not with cut: true (a cut link delivers nothing)'],
    ],
    [
      'cut with bandwidth',
      'kind: link\nfrom: 1\nat: { step: 1 }\ncut: true\nbandwidth: 1M',
      ['faults[0].bandwidth: not with cut: true (a cut link delivers nothing)'],
    ],
    ['a link fault without an effect', 'kind: link\nfrom: 1\nat: { step: 1 }', ['faults[0]: a link fault needs cut: true, delayMs or bandwidth']],
    ['cut: false alone', 'kind: link\nfrom: 1\nat: { step: 1 }\ncut: false', ['faults[0]: a link fault needs cut: true, delayMs or bandwidth']],
    ['cut as a word', 'kind: link\nfrom: 1\nat: { step: 1 }\ncut: yes', ['faults[0].cut: expected true or false (got "yes")']],
    ...['10MB', '0', '-5', 'fast'].map((bw): [string, string, string[]] => [
      `bandwidth ${bw}`,
      `kind: link\nfrom: 1\nat: { step: 1 }\nbandwidth: ${bw}`,
      [
        `faults[0].bandwidth: expected bytes per second > 0: a number, or a size with suffix K, KiB, M, MiB, G or GiB such as 10MiB (got ${/^-?\d+$/.test(bw) ? bw : `"${bw}"`})`,
      ],
    ]),
    ['a zero delay', 'kind: link\nfrom: 1\nat: { step: 1 }\ndelayMs: 0', ['faults[0].delayMs: expected a whole number of milliseconds >= 1 (got 0)']],
    ['a fractional hang', 'kind: hang\nrank: 1\nat: { step: 1 }\nms: 2.5', ['faults[0].ms: expected a whole number of milliseconds >= 1 (got 2.5)']],
    ['exit code 0', 'kind: crash\nrank: 1\nat: { step: 1 }\ncode: 0', ['faults[0].code: expected an integer from 1 to 255 (got 0)']],
    ['exit code 256', 'kind: crash\nrank: 1\nat: { step: 1 }\ncode: 256', ['faults[0].code: expected an integer from 1 to 255 (got 256)']],
    ['zero frames', 'kind: corrupt\nrank: 1\nat: { step: 1 }\nframes: 0', ['faults[0].frames: expected an integer >= 1 (got 0)']],
    [
      'random with a small mean',
      'kind: random\nmeanSteps: 0.5',
      ['faults[0].meanSteps: expected a number >= 1: the mean number of steps between faults (got 0.5)'],
    ],
    ['random without a mean', 'kind: random', ['faults[0].meanSteps: required (a number >= 1: the mean number of steps between faults)']],
    [
      'random of random',
      'kind: random\nmeanSteps: 5\nkinds: [kill, random]',
      ['faults[0].kinds[1]: expected one of kill, hang, crash, link, corrupt (got "random")'],
    ],
    [
      'random kinds as a word',
      'kind: random\nmeanSteps: 5\nkinds: kill',
      ['faults[0].kinds: expected a non-empty list of kill, hang, crash, link, corrupt (got "kill")'],
    ],
    [
      'random kinds empty',
      'kind: random\nmeanSteps: 5\nkinds: []',
      ['faults[0].kinds: expected a non-empty list of kill, hang, crash, link, corrupt (got a list)'],
    ],
    [
      'a rank on a random entry',
      'kind: random\nmeanSteps: 5\nrank: 1',
      ['faults[0].rank: unknown field (a random entry takes kind, meanSteps, kinds)'],
    ],
  ])('%s', (_, entry, issues) => {
    expect(issuesOf(one(entry))).toEqual(issues);
  });

  it.each<[string, string, string, string[]]>([
    ['an empty file', 's.yaml', '', ['(root): the file is empty; expected a mapping with a faults list']],
    ['a blank JSON file', 's.json', ' \n\n', ['(root): the file is empty; expected a mapping with a faults list']],
    ['only comments', 's.yaml', '# faults to come\n', ['(root): expected a mapping with a faults list (got null)']],
    ['a list at the root', 's.yaml', '- kind: kill\n', ['(root): expected a mapping with a faults list (got a list)']],
    ['a number at the root', 's.json', '42', ['(root): expected a mapping with a faults list (got 42)']],
    ['no faults key', 's.yaml', 'fault: []\n', ['fault: unknown field (the file takes faults)', 'faults: required (a list of faults)']],
    ['faults not a list', 's.yaml', 'faults:\n  kind: kill\n', ['faults: expected a list of faults (got a mapping)']],
    ['faults a string', 's.json', '{"faults": "kill"}', ['faults: expected a list of faults (got "kill")']],
    ['an entry that is not a mapping', 's.yaml', 'faults: [3]\n', ['faults[0]: expected a mapping with a kind, one of kill, hang, crash, link, corrupt, slow, slow-link, jitter, pause, random (got 3)']],
    ['bad indentation', 's.yaml', 'faults:\n  - kind: kill\n    rank: 3\n   at: { step: 1 }\n', ['line 4, column 1: Sequence item without - indicator']],
    ['an unclosed flow mapping', 's.yaml', 'faults:\n  - kind: kill\n    at: { step: 1\n    rank: 2\n', ['line 4, column 5: Flow map in block collection must be sufficiently indented and end with a }']],
    ['a duplicate key', 's.yaml', 'faults:\n  - kind: kill\n    kind: hang\n', ['line 3, column 5: Map keys must be unique']],
    ['a tab', 's.yaml', 'faults:\n\t- kind: kill\n', ['line 2, column 1: Tabs are not allowed as indentation']],
    ['a trailing comma in JSON', 's.json', '{\n  "faults": [\n    {"kind": "kill", "rank": 3,}\n  ]\n}', ['line 3, column 32: Expected double-quoted property name in JSON']],
    ['a missing comma in JSON', 's.json', '{\n  "faults": [\n    {"kind": "kill" "rank": 3}\n  ]\n}', ["line 3, column 21: Expected ',' or '}' after property value in JSON"]],
    ['JSON cut short', 's.json', '{\n  "faults": [\n', ['line 3, column 1: Unexpected end of JSON input']],
    ['JSON with text after it', 's.json', '{"faults": []}\nmore', ['line 2, column 1: Unexpected non-whitespace character after JSON']],
    ['YAML in a .json file', 's.json', 'faults: []\n', ["line 1, column 3: Unexpected token 'u'"]],
  ])('%s', (_, name, text, issues) => {
    expect(issuesOf(text, name)).toEqual(issues);
  });

  it('collects every issue, in file order, into one message that names the file', () => {
    const text = 'faults:\n  - { kind: kill, at: { step: -1 } }\n  - { kind: hang, rank: 1, at: { step: 2 } }\n  - { kind: link, from: x, at: { ms: 1 } }\n';
    let error: unknown;
    try {
      parseScenario(text, 'runs/chaos.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(ScenarioError);
    const e = error as ScenarioError;
    expect(e.name).toBe('ScenarioError');
    expect(e.source).toBe('runs/chaos.yaml');
    expect(e.issues).toEqual([
      'faults[0].rank: required (an integer >= 0)',
      'faults[0].at.step: expected an integer >= 0 (got -1)',
      'faults[2].from: expected an integer >= 0 (got "x")',
      'faults[2]: a link fault needs cut: true, delayMs or bandwidth',
    ]);
    expect(e.message).toBe(`runs/chaos.yaml: ${e.issues.join('; ')}`);
  });
});

describe('the --inject shorthand', () => {
  it.each<[string, string]>([
    ['kill:rank=3:step=4:phase=reduce-scatter', 'kind: kill\nrank: 3\nat: { step: 4, phase: reduce-scatter }'],
    ['kill:rank=3:step=4:phase=reduce-scatter:chunk=1', 'kind: kill\nrank: 3\nat: { step: 4, phase: reduce-scatter, chunk: 1 }'],
    ['hang:rank=5:step=6:ms=3000', 'kind: hang\nrank: 5\nat: { step: 6 }\nms: 3000'],
    ['hang:rank=5:atMs=1500', 'kind: hang\nrank: 5\nat: { ms: 1500 }'],
    ['link:from=2:step=8:cut=true:ms=1000', 'kind: link\nfrom: 2\nat: { step: 8 }\ncut: true\nms: 1000'],
    ['link:from=2:step=8:bandwidth=10MiB', 'kind: link\nfrom: 2\nat: { step: 8 }\nbandwidth: 10MiB'],
    ['link:from=2:step=8:bandwidth=4096:delayMs=5', 'kind: link\nfrom: 2\nat: { step: 8 }\nbandwidth: 4096\ndelayMs: 5'],
    ['corrupt:rank=1:step=9:frames=2', 'kind: corrupt\nrank: 1\nat: { step: 9 }\nframes: 2'],
    ['crash:rank=2:step=3:code=3', 'kind: crash\nrank: 2\nat: { step: 3 }\ncode: 3'],
    ['crash:rank=2:step=3', 'kind: crash\nrank: 2\nat: { step: 3 }'],
  ])('%s is the same fault as its YAML', (spec, yaml) => {
    const fromFile = parseScenario(one(yaml), 's.yaml');
    const fromFlag = parseInjects([spec]);
    expect(fromFlag.faults).toStrictEqual(fromFile.faults);
    expect(fromFlag.origins).toEqual(['--inject[0]']);
  });

  it('reads a random spec, kinds as a comma list', () => {
    expect(parseInjects(['random:meanSteps=10:kinds=kill,hang'])).toStrictEqual({
      faults: [],
      random: [{ meanSteps: 10, kinds: ['kill', 'hang'] }],
      origins: [],
      stragglers: [],
      stragglerOrigins: [],
    });
    expect(parseInjects(['random:meanSteps=10:kinds=link']).random).toEqual([{ meanSteps: 10, kinds: ['link'] }]);
  });

  it('turns one word into the entry it stands for, unvalidated', () => {
    expect(parseInject('kill:rank=3:step=4:phase=reduce-scatter')).toStrictEqual({ kind: 'kill', rank: 3, at: { step: 4, phase: 'reduce-scatter' } });
    expect(parseInject('link:from=2:atMs=800:cut=true')).toStrictEqual({ kind: 'link', from: 2, at: { ms: 800 }, cut: true });
    expect(parseInject('random:meanSteps=2.5:kinds=kill,hang')).toStrictEqual({ kind: 'random', meanSteps: 2.5, kinds: ['kill', 'hang'] });
    // Validation is parseInjects' job: a bad value passes through as written.
    expect(parseInject('kill:rank=x:colour=red')).toStrictEqual({ kind: 'kill', rank: 'x', colour: 'red' });
  });

  it('numbers the faults of several flags in order, leaving random specs apart', () => {
    const s = parseInjects(['random:meanSteps=5', 'kill:rank=1:step=2', 'hang:rank=0:step=3']);
    expect(s.faults.map((f) => [f.id, f.kind])).toEqual([
      [0, 'kill'],
      [1, 'hang'],
    ]);
    expect(s.origins).toEqual(['--inject[1]', '--inject[2]']);
    expect(s.random).toEqual([{ meanSteps: 5, kinds: [...FAULT_KINDS] }]);
  });

  it.each<[string, string[], string[]]>([
    ['a bad value, naming its flag', ['kill:rank=3:step=4', 'hang:rank=5:step=-1'], ['--inject[1].at.step: expected an integer >= 0 (got -1)']],
    ['a word for a number', ['kill:rank=three:step=4'], ['--inject[0].rank: expected an integer >= 0 (got "three")']],
    ['a fractional step', ['kill:rank=1:step=1.5'], ['--inject[0].at.step: expected an integer >= 0 (got 1.5)']],
    ['an unknown kind', ['explode:rank=1:step=1'], ['--inject[0].kind: expected one of kill, hang, crash, link, corrupt, slow, slow-link, jitter, pause, random (got "explode")']],
    ['an unknown field', ['kill:rank=1:step=1:colour=red'], ['--inject[0].colour: unknown field (a kill fault takes kind, rank, at)']],
    ['a missing rank', ['kill:step=1'], ['--inject[0].rank: required (an integer >= 0)']],
    ['a missing trigger', ['kill:rank=1'], ['--inject[0].at: required ({ step: N, phase?, chunk? } or { ms: T })']],
    ['cut with a delay', ['link:from=1:step=1:cut=true:delayMs=5'], ['--inject[0].delayMs: not with cut: true (a cut link delivers nothing)']],
    ['a bad size', ['link:from=1:step=1:bandwidth=10MB'], ['--inject[0].bandwidth: expected bytes per second > 0: a number, or a size with suffix K, KiB, M, MiB, G or GiB such as 10MiB (got "10MB")']],
    ['a chunk without a phase', ['kill:rank=1:step=1:chunk=1'], ['--inject[0].at.chunk: needs a phase too (reduce-scatter or all-gather): chunks are counted within a phase']],
    ['step and atMs', ['kill:rank=1:step=1:atMs=5'], ['--inject[0].at.ms: not with step (a trigger is a step or a time, not both)']],
    ['random of random', ['random:meanSteps=3:kinds=kill,random'], ['--inject[0].kinds[1]: expected one of kill, hang, crash, link, corrupt (got "random")']],
    ['no kind first', ['rank=3:step=4'], ['--inject[0].kind: the shorthand starts with the kind, one of kill, hang, crash, link, corrupt, slow, slow-link, jitter, pause, random (e.g. kill:rank=3:step=4; got "rank=3:step=4")']],
    ['an empty word', [''], ['--inject[0].kind: the shorthand starts with the kind, one of kill, hang, crash, link, corrupt, slow, slow-link, jitter, pause, random (e.g. kill:rank=3:step=4; got "")']],
    ['a part without =', ['kill:rank3:step=1'], ['--inject[0]: "rank3" is not field=value (e.g. kill:rank=3:step=4)']],
    ['a field given twice', ['kill:rank=1:rank=2:step=1'], ['--inject[0].rank: given twice']],
    ['a trigger field given twice', ['kill:rank=1:step=1:step=2'], ['--inject[0].at.step: given twice']],
    ['at= in the shorthand', ['kill:rank=1:at=4'], ['--inject[0].at: in the shorthand write step=N (with phase= and chunk=) or atMs=T']],
  ])('rejects %s', (_, specs, issues) => {
    expect(injectIssuesOf(specs)).toEqual(issues);
  });

  it('reports every flag at once, against the command line', () => {
    expect(() => parseInjects(['kill:rank=-1:step=1', 'hang:rank=1:step=2', 'crash:rank=1'])).toThrow(
      'command line: --inject[0].rank: expected an integer >= 0 (got -1); --inject[2].at: required ({ step: N, phase?, chunk? } or { ms: T })',
    );
    expect(() => parseInject('kill:rank3')).toThrow(ScenarioError);
    expect(() => parseInject('kill:rank3')).toThrow('command line: --inject: "rank3" is not field=value');
  });
});

describe('validateAgainst', () => {
  const run = { workers: 8, steps: 20 };

  it('finds nothing wrong with a scenario that fits the run', () => {
    expect(validateAgainst(parseScenario(EXAMPLE_YAML, 's.yaml'), run)).toEqual([]);
    expect(validateAgainst(parseInjects(['kill:rank=7:step=19', 'link:from=7:atMs=999999:cut=true']), run)).toEqual([]);
  });

  it('names ranks that do not exist, links from them, and steps that never come', () => {
    const s = parseScenario(
      one('kind: kill\nrank: 9\nat: { step: 1 }') +
        '  - { kind: link, from: 8, at: { step: 2 }, cut: true }\n  - { kind: random, meanSteps: 3 }\n  - { kind: hang, rank: 0, at: { step: 20 } }\n',
      's.yaml',
    );
    expect(validateAgainst(s, run)).toEqual([
      'faults[0].rank: 9 is not a rank (0..7)',
      'faults[1].from: 8 is not a rank (0..7)',
      // The random entry at faults[2] shifts nothing: the path is the one in the file.
      'faults[3].at.step: 20 never comes, the run has 20 steps (0..19): this fault would never fire',
    ]);
  });

  it('names --inject flags by their own index', () => {
    const s = parseInjects(['random:meanSteps=4', 'crash:rank=8:step=3']);
    expect(validateAgainst(s, run)).toEqual(['--inject[1].rank: 8 is not a rank (0..7)']);
  });

  it('checks scenarios built in code too: a chunk without a phase, fault i as faults[i]', () => {
    const s: Scenario = {
      faults: [
        { id: 0, kind: 'kill', rank: 0, at: { step: 1 } },
        { id: 1, kind: 'corrupt', rank: -1, at: { step: 2, chunk: 1 }, frames: 1 },
      ],
      random: [],
      stragglers: [],
    };
    expect(validateAgainst(s, run)).toEqual([
      'faults[1].rank: -1 is not a rank (0..7)',
      'faults[1].at.chunk: needs a phase too (reduce-scatter or all-gather): chunks are counted within a phase',
    ]);
  });

  it('knows a ring of one has no links', () => {
    expect(validateAgainst(parseInjects(['link:from=0:step=1:cut=true']), { workers: 1, steps: 5 })).toEqual([
      '--inject[0].from: a ring of 1 worker has no links',
    ]);
  });

  it('keeps each fault named after a merge of a file and flags', () => {
    const merged = mergeScenarios(parseScenario(one('kind: kill\nrank: 1\nat: { step: 1 }'), 's.yaml'), parseInjects(['kill:rank=99:step=2', 'random:meanSteps=3']));
    expect(merged.faults.map((f) => f.id)).toEqual([0, 1]);
    expect(merged.random).toEqual([{ meanSteps: 3, kinds: [...FAULT_KINDS] }]);
    expect(validateAgainst(merged, run)).toEqual(['--inject[0].rank: 99 is not a rank (0..7)']);
  });
});

describe('expandRandom', () => {
  const ALL: RandomSpec = { meanSteps: 10, kinds: [...FAULT_KINDS] };
  const base = { seed: 42, workers: 16, steps: 200_000, firstId: 7 };

  it('gives the same list for the same inputs, and a different one for another seed', () => {
    const small = { ...base, steps: 500 };
    const a = expandRandom(ALL, small);
    expect(a.length).toBeGreaterThan(10);
    expect(expandRandom(ALL, small)).toStrictEqual(a);
    expect(expandRandom({ ...ALL, kinds: [...ALL.kinds] }, { ...small })).toStrictEqual(a);
    for (const seed of [43, 0, -1, 2 ** 40 + 42]) expect(expandRandom(ALL, { ...small, seed })).not.toEqual(a);
  });

  it('draws every field within its bounds, in step order, never at step 0 or twice at a step', () => {
    const faults = expandRandom(ALL, base);
    expect(faults.map((f) => f.id)).toEqual(faults.map((_, i) => base.firstId + i));
    let last = 0;
    const seen = new Set<FaultKind>();
    for (const f of faults) {
      seen.add(f.kind);
      expect('step' in f.at).toBe(true);
      const at = f.at as { step: number; phase?: string; chunk?: number };
      expect(at.step).toBeGreaterThan(last);
      last = at.step;
      expect(PHASES).toContain(at.phase);
      expect([0, 1]).toContain(at.chunk);
      const rank = f.kind === 'link' ? f.from : f.rank;
      expect(Number.isInteger(rank) && rank >= 0 && rank < base.workers).toBe(true);
      switch (f.kind) {
        case 'hang':
          expect(f.ms! >= 200 && f.ms! <= 1500 && Number.isInteger(f.ms)).toBe(true);
          break;
        case 'crash':
          expect(f.code >= 1 && f.code <= 9 && Number.isInteger(f.code)).toBe(true);
          break;
        case 'corrupt':
          expect(f.frames >= 1 && f.frames <= 3 && Number.isInteger(f.frames)).toBe(true);
          break;
        case 'link':
          expect(f.ms! >= 200 && f.ms! <= 1500 && Number.isInteger(f.ms)).toBe(true);
          expect(f.bandwidth).toBeUndefined();
          if (f.cut) expect(f.delayMs).toBeUndefined();
          else expect(f.delayMs! >= 20 && f.delayMs! <= 100 && Number.isInteger(f.delayMs)).toBe(true);
          break;
        case 'kill':
          break;
      }
    }
    expect(last).toBeLessThan(base.steps);
    expect([...seen].sort()).toEqual([...FAULT_KINDS].sort());
    // What it draws is a scenario that fits the run.
    expect(validateAgainst({ faults, random: [], stragglers: [] }, base)).toEqual([]);
  });

  it('spreads faults with the mean gap asked for, ranks and kinds evenly', () => {
    for (const meanSteps of [10, 2.5]) {
      const faults = expandRandom({ ...ALL, meanSteps }, base);
      const steps = faults.map((f) => (f.at as { step: number }).step);
      const gaps = steps.map((s, i) => s - (i === 0 ? 0 : steps[i - 1]!));
      expect(Math.min(...gaps)).toBe(1);
      const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
      expect(Math.abs(mean - meanSteps) / meanSteps).toBeLessThan(0.03);
    }
    const faults = expandRandom(ALL, base);
    const n = faults.length;
    const count = <T>(values: T[]) => [...new Map(values.map((v) => [v, 0])).keys()].map((v) => values.filter((x) => x === v).length);
    for (const c of count(faults.map((f) => f.kind))) expect(Math.abs(c - n / 5) / (n / 5)).toBeLessThan(0.1);
    for (const c of count(faults.map((f) => (f.kind === 'link' ? f.from : f.rank)))) expect(Math.abs(c - n / 16) / (n / 16)).toBeLessThan(0.15);
    const links = faults.filter((f) => f.kind === 'link');
    expect(Math.abs(links.filter((f) => f.cut).length / links.length - 0.5)).toBeLessThan(0.05);
  });

  it('draws only the kinds asked for, weighted by repeats', () => {
    const faults = expandRandom({ meanSteps: 3, kinds: ['hang', 'hang', 'hang', 'kill'] }, base);
    const hangs = faults.filter((f) => f.kind === 'hang').length;
    expect(faults.every((f) => f.kind === 'hang' || f.kind === 'kill')).toBe(true);
    expect(Math.abs(hangs / faults.length - 0.75)).toBeLessThan(0.02);
  });

  it('puts a fault at every step from 1 when the mean is 1, and none in a run too short to have one', () => {
    const every = expandRandom({ meanSteps: 1, kinds: ['kill'] }, { ...base, steps: 50 });
    expect(every.map((f) => (f.at as { step: number }).step)).toEqual(Array.from({ length: 49 }, (_, i) => i + 1));
    expect(expandRandom(ALL, { ...base, steps: 1 })).toEqual([]);
    expect(expandRandom(ALL, { ...base, steps: 0 })).toEqual([]);
  });

  it('throws RangeError for inputs no scenario file could give', () => {
    expect(() => expandRandom({ meanSteps: 0.5, kinds: ['kill'] }, base)).toThrow(RangeError);
    expect(() => expandRandom({ meanSteps: 5, kinds: [] }, base)).toThrow(RangeError);
    expect(() => expandRandom(ALL, { ...base, seed: 1.5 })).toThrow(RangeError);
    expect(() => expandRandom(ALL, { ...base, workers: 0 })).toThrow(RangeError);
  });
});

describe('expandScenario', () => {
  const o = { seed: 7, workers: 8, steps: 400 };

  it('keeps the scenario faults, appends each spec’s draws, and never puts two faults at one step', () => {
    const s = parseScenario(
      'faults:\n  - { kind: kill, rank: 1, at: { step: 5 } }\n  - { kind: random, meanSteps: 3 }\n  - { kind: random, meanSteps: 4, kinds: [link] }\n  - { kind: hang, rank: 2, at: { ms: 100 } }\n',
      's.yaml',
    );
    const all = expandScenario(s, o);
    expect(all.slice(0, 2)).toStrictEqual(s.faults);
    expect(all.map((f) => f.id)).toEqual(all.map((_, i) => i));
    const steps = all.flatMap((f) => ('step' in f.at ? [f.at.step] : []));
    expect(new Set(steps).size).toBe(steps.length);
    expect(all.some((f) => f.kind === 'link')).toBe(true);
    expect(expandScenario(s, o)).toStrictEqual(all);
    expect(expandScenario(s, { ...o, seed: 8 })).not.toEqual(all);
    // The first spec draws from the run's seed itself, so one spec alone is expandRandom's list.
    const alone: Scenario = { faults: [], random: [s.random[0]!], stragglers: [] };
    expect(expandScenario(alone, o)).toStrictEqual(expandRandom(s.random[0]!, { ...o, firstId: 0 }));
  });
});

describe('stragglers', () => {
  const STRAGGLER_YAML = `
faults:
  - kind: kill
    rank: 1
    at: { step: 2 }
  - kind: slow
    rank: 5
    factor: 3
    at: { step: 3 }
    steps: 20
  - kind: slow-link
    from: 2
    at: { step: 3 }
    bandwidth: 20MiB
    delayMs: 30
    steps: 10
  - kind: jitter
    maxMs: 10
  - kind: random
    meanSteps: 5
  - kind: pause
    rank: 4
    ms: 30
    everyMs: 200
  - kind: hang
    rank: 0
    at: { step: 4 }
`;

  it('parses each kind into stragglers, apart from faults, ids after every fault', () => {
    const s = parseScenario(STRAGGLER_YAML, 's.yaml');
    expect(s.faults.map((f) => [f.id, f.kind])).toEqual([
      [0, 'kill'],
      [1, 'hang'],
    ]);
    expect(s.origins).toEqual(['faults[0]', 'faults[6]']);
    expect(s.random).toEqual([{ meanSteps: 5, kinds: [...FAULT_KINDS] }]);
    expect(s.stragglers).toStrictEqual<StragglerFault[]>([
      { id: 2, kind: 'slow', rank: 5, at: { step: 3 }, factor: 3, steps: 20 },
      { id: 3, kind: 'slow-link', from: 2, at: { step: 3 }, bandwidth: 20 * 1024 * 1024, delayMs: 30, steps: 10 },
      { id: 4, kind: 'jitter', maxMs: 10 },
      { id: 5, kind: 'pause', rank: 4, ms: 30, everyMs: 200 },
    ]);
    expect(s.stragglerOrigins).toEqual(['faults[1]', 'faults[2]', 'faults[3]', 'faults[5]']);
    expect(STRAGGLER_KINDS).toEqual(['slow', 'slow-link', 'jitter', 'pause']);
  });

  it.each<[string, string, StragglerFault]>([
    ['slow:rank=5:factor=3:step=3:steps=20', 'kind: slow\nrank: 5\nfactor: 3\nat: { step: 3 }\nsteps: 20', { id: 0, kind: 'slow', rank: 5, at: { step: 3 }, factor: 3, steps: 20 }],
    ['slow:rank=1:addMs=40:atMs=500', 'kind: slow\nrank: 1\naddMs: 40\nat: { ms: 500 }', { id: 0, kind: 'slow', rank: 1, at: { ms: 500 }, addMs: 40 }],
    ['slow:rank=0:factor=1.5:step=0', 'kind: slow\nrank: 0\nfactor: 1.5\nat: { step: 0 }', { id: 0, kind: 'slow', rank: 0, at: { step: 0 }, factor: 1.5 }],
    [
      'slow-link:from=2:step=3:bandwidth=20MiB:delayMs=30',
      'kind: slow-link\nfrom: 2\nat: { step: 3 }\nbandwidth: 20MiB\ndelayMs: 30',
      { id: 0, kind: 'slow-link', from: 2, at: { step: 3 }, bandwidth: 20 * 1024 * 1024, delayMs: 30 },
    ],
    ['slow-link:from=0:step=1:delayMs=5:steps=10', 'kind: slow-link\nfrom: 0\nat: { step: 1 }\ndelayMs: 5\nsteps: 10', { id: 0, kind: 'slow-link', from: 0, at: { step: 1 }, delayMs: 5, steps: 10 }],
    ['jitter:maxMs=10', 'kind: jitter\nmaxMs: 10', { id: 0, kind: 'jitter', maxMs: 10 }],
    ['pause:rank=4:ms=30:everyMs=200', 'kind: pause\nrank: 4\nms: 30\neveryMs: 200', { id: 0, kind: 'pause', rank: 4, ms: 30, everyMs: 200 }],
    [
      'pause:rank=4:ms=30:everyMs=200:step=2:steps=5',
      'kind: pause\nrank: 4\nms: 30\neveryMs: 200\nat: { step: 2 }\nsteps: 5',
      { id: 0, kind: 'pause', rank: 4, ms: 30, everyMs: 200, at: { step: 2 }, steps: 5 },
    ],
    [
      'pause:rank=1:ms=10:everyMs=100:atMs=50:forMs=1000',
      'kind: pause\nrank: 1\nms: 10\neveryMs: 100\nat: { ms: 50 }\nforMs: 1000',
      { id: 0, kind: 'pause', rank: 1, ms: 10, everyMs: 100, at: { ms: 50 }, forMs: 1000 },
    ],
  ])('%s is the same straggler as its YAML', (spec, yaml, straggler) => {
    const fromFile = parseScenario(one(yaml), 's.yaml');
    const fromFlag = parseInjects([spec]);
    expect(fromFile.stragglers).toStrictEqual([straggler]);
    expect(fromFlag.stragglers).toStrictEqual(fromFile.stragglers);
    expect(fromFlag.faults).toEqual([]);
    expect(fromFlag.stragglerOrigins).toEqual(['--inject[0]']);
  });

  it.each<[string, string, string[]]>([
    ['a slow fault without an effect', 'kind: slow\nrank: 3\nat: { step: 1 }', ['faults[0]: a slow fault needs factor (> 1) or addMs (> 0)']],
    ['a factor below 1', 'kind: slow\nrank: 3\nat: { step: 1 }\nfactor: 0.5', ['faults[0].factor: expected a number > 1 (got 0.5)']],
    ['a factor of 1', 'kind: slow\nrank: 3\nat: { step: 1 }\nfactor: 1', ['faults[0].factor: expected a number > 1 (got 1)']],
    ['a factor as a word', 'kind: slow\nrank: 3\nat: { step: 1 }\nfactor: twice', ['faults[0].factor: expected a number > 1 (got "twice")']],
    ['a zero addMs', 'kind: slow\nrank: 3\nat: { step: 1 }\naddMs: 0', ['faults[0].addMs: expected a whole number of milliseconds >= 1 (got 0)']],
    [
      'factor and addMs',
      'kind: slow\nrank: 3\nat: { step: 1 }\nfactor: 2\naddMs: 5',
      ['faults[0].addMs: not with factor (a slow rank is slowed by a factor or by addMs, not both)'],
    ],
    ['a slow fault without a trigger', 'kind: slow\nrank: 3\nfactor: 2', ['faults[0].at: required ({ step: N, phase?, chunk? } or { ms: T })']],
    ['zero steps', 'kind: slow\nrank: 3\nat: { step: 1 }\nfactor: 2\nsteps: 0', ['faults[0].steps: expected an integer >= 1 (got 0)']],
    ['a slow-link fault without an effect', 'kind: slow-link\nfrom: 1\nat: { step: 1 }', ['faults[0]: a slow-link fault needs bandwidth or delayMs']],
    [
      'a slow-link fault with a rank and a cut',
      'kind: slow-link\nrank: 1\nat: { step: 1 }\ncut: true\ndelayMs: 5',
      [
        'faults[0].rank: unknown field (a slow-link fault takes kind, from, to, at, bandwidth, delayMs, steps)',
        'faults[0].cut: unknown field (a slow-link fault takes kind, from, to, at, bandwidth, delayMs, steps)',
        'faults[0].from: required (an integer >= 0)',
      ],
    ],
    [
      'a slow-link bandwidth in MB',
      'kind: slow-link\nfrom: 1\nat: { step: 1 }\nbandwidth: 20MB',
      ['faults[0].bandwidth: expected bytes per second > 0: a number, or a size with suffix K, KiB, M, MiB, G or GiB such as 10MiB (got "20MB")'],
    ],
    ['jitter without maxMs', 'kind: jitter', ['faults[0].maxMs: required (a whole number of milliseconds >= 1)']],
    [
      'jitter with a rank and a trigger',
      'kind: jitter\nmaxMs: 10\nrank: 1\nat: { step: 1 }',
      ['faults[0].rank: unknown field (a jitter fault takes kind, maxMs)', 'faults[0].at: unknown field (a jitter fault takes kind, maxMs)'],
    ],
    ['a fractional jitter', 'kind: jitter\nmaxMs: 2.5', ['faults[0].maxMs: expected a whole number of milliseconds >= 1 (got 2.5)']],
    [
      'a pause without its times',
      'kind: pause\nrank: 4',
      ['faults[0].ms: required (a whole number of milliseconds >= 1)', 'faults[0].everyMs: required (a whole number of milliseconds >= 1)'],
    ],
    ['a pause as long as its period', 'kind: pause\nrank: 4\nms: 200\neveryMs: 200', ['faults[0].ms: expected less than everyMs (200), or the rank never runs (got 200)']],
    ['a pause with a bad period', 'kind: pause\nrank: 4\nms: 30\neveryMs: 0', ['faults[0].everyMs: expected a whole number of milliseconds >= 1 (got 0)']],
    [
      'a pause for steps and for a time',
      'kind: pause\nrank: 4\nms: 30\neveryMs: 200\nsteps: 3\nforMs: 1000',
      ['faults[0].forMs: not with steps (a pause lasts a number of steps or a time, not both)'],
    ],
    ['a pause with a bad trigger', 'kind: pause\nrank: 4\nms: 30\neveryMs: 200\nat: {}', ['faults[0].at: needs step or ms ({ step: N, phase?, chunk? } or { ms: T })']],
    [
      'stragglers in random kinds',
      'kind: random\nmeanSteps: 5\nkinds: [kill, slow]',
      ['faults[0].kinds[1]: expected one of kill, hang, crash, link, corrupt (got "slow")'],
    ],
  ])('rejects %s', (_, entry, issues) => {
    expect(issuesOf(one(entry))).toEqual(issues);
  });

  it.each<[string, string[], string[]]>([
    ['a slow fault without an effect', ['kill:rank=1:step=1', 'slow:rank=5:step=3'], ['--inject[1]: a slow fault needs factor (> 1) or addMs (> 0)']],
    ['a factor below 1', ['slow:rank=5:factor=0.5:step=3'], ['--inject[0].factor: expected a number > 1 (got 0.5)']],
    ['a slow-link with a cut', ['slow-link:from=2:step=3:cut=true'], ['--inject[0].cut: unknown field (a slow-link fault takes kind, from, to, at, bandwidth, delayMs, steps)', '--inject[0]: a slow-link fault needs bandwidth or delayMs']],
    ['a pause of a word', ['pause:rank=4:ms=long:everyMs=200'], ['--inject[0].ms: expected a whole number of milliseconds >= 1 (got "long")']],
  ])('rejects the shorthand %s', (_, specs, issues) => {
    expect(injectIssuesOf(specs)).toEqual(issues);
  });

  it('validateAgainst names ranks and links that do not exist, and steps that never come', () => {
    const run = { workers: 4, steps: 10 };
    const s = parseScenario(
      'faults:\n  - { kind: slow, rank: 4, factor: 2, at: { step: 1 } }\n  - { kind: slow-link, from: 7, delayMs: 5, at: { step: 10 } }\n  - { kind: jitter, maxMs: 10 }\n  - { kind: pause, rank: 3, ms: 5, everyMs: 50 }\n  - { kind: pause, rank: 9, ms: 5, everyMs: 50, at: { step: 2 } }\n',
      's.yaml',
    );
    expect(validateAgainst(s, run)).toEqual([
      'faults[0].rank: 4 is not a rank (0..3)',
      'faults[1].from: 7 is not a rank (0..3)',
      'faults[1].at.step: 10 never comes, the run has 10 steps (0..9): this fault would never fire',
      'faults[4].rank: 9 is not a rank (0..3)',
    ]);
    expect(validateAgainst(parseInjects(['slow-link:from=0:step=1:delayMs=5', 'jitter:maxMs=3']), { workers: 1, steps: 5 })).toEqual([
      '--inject[0].from: a ring of 1 worker has no links',
    ]);
    // Built in code, straggler i is stragglers[i].
    const built: Scenario = { faults: [], random: [], stragglers: [{ id: 0, kind: 'pause', rank: -1, ms: 1, everyMs: 2, at: { step: 1, chunk: 0 } }] };
    expect(validateAgainst(built, run)).toEqual([
      'stragglers[0].rank: -1 is not a rank (0..3)',
      'stragglers[0].at.chunk: needs a phase too (reduce-scatter or all-gather): chunks are counted within a phase',
    ]);
  });

  it('mergeScenarios numbers stragglers after every fault, ids unique, origins kept', () => {
    const file = parseScenario(STRAGGLER_YAML, 's.yaml');
    const flags = parseInjects(['slow:rank=9:addMs=40:step=1', 'kill:rank=2:step=5']);
    expect(flags.stragglers.map((f) => f.id)).toEqual([1]);
    const merged = mergeScenarios(file, flags);
    expect(merged.faults.map((f) => [f.id, f.kind])).toEqual([
      [0, 'kill'],
      [1, 'hang'],
      [2, 'kill'],
    ]);
    expect(merged.stragglers.map((f) => [f.id, f.kind])).toEqual([
      [3, 'slow'],
      [4, 'slow-link'],
      [5, 'jitter'],
      [6, 'pause'],
      [7, 'slow'],
    ]);
    const ids = [...merged.faults, ...merged.stragglers].map((f) => f.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(merged.stragglerOrigins).toEqual(['faults[1]', 'faults[2]', 'faults[3]', 'faults[5]', '--inject[0]']);
    expect(validateAgainst(merged, { workers: 8, steps: 20 })).toEqual(['--inject[0].rank: 9 is not a rank (0..7)']);
    // Scenarios from before stragglers (built in code without the list) merge too.
    const old = { faults: [{ id: 0, kind: 'kill', rank: 0, at: { step: 1 } }], random: [] } as unknown as Scenario;
    expect(mergeScenarios(old, flags).stragglers).toStrictEqual([{ id: 2, kind: 'slow', rank: 9, at: { step: 1 }, addMs: 40 }]);
  });

  it('expandStragglers returns them with ids after the faults, or from firstId; expandScenario leaves them out', () => {
    const s = parseScenario(STRAGGLER_YAML, 's.yaml');
    // A slow link written without `to` gets its successor in the launch ring.
    expect(expandStragglers(s, { workers: 8 })).toStrictEqual(s.stragglers.map((f) => (f.kind === 'slow-link' ? { ...f, to: (f.from + 1) % 8 } : f)));
    const o = { seed: 3, workers: 8, steps: 50 };
    const faults = expandScenario(s, o);
    expect(faults.every((f) => (FAULT_KINDS as readonly string[]).includes(f.kind))).toBe(true);
    const stragglers = expandStragglers(s, { workers: 8, firstId: faults.length });
    expect(stragglers.map((f) => f.id)).toEqual([0, 1, 2, 3].map((i) => faults.length + i));
    expect(stragglers.map((f) => f.kind)).toEqual(['slow', 'slow-link', 'jitter', 'pause']);
    expect(s.stragglers[0]!.id).toBe(2); // the scenario itself is not changed
  });
});

describe('the scenario modules stay pure', () => {
  it('import only yaml, the wire contract, the seeded generator and each other, and read no clock or random source', () => {
    const dir = new URL('../../src/coordinator/scenario/', import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    expect(files.sort()).toEqual(['expand.ts', 'index.ts', 'random-faults.ts', 'read.ts', 'shorthand.ts', 'types.ts', 'validate.ts']);
    for (const file of files) {
      const source = readFileSync(new URL(file, dir), 'utf8');
      const imports = [...source.matchAll(/^(?:import|export) [^;]*? from '([^']+)';$/gm)].map((m) => m[1]!);
      expect(imports.length, file).toBeGreaterThan(0);
      for (const spec of imports) expect(spec, `${file} imports ${spec}`).toMatch(/^(yaml|\.\/[a-z-]+\.js|\.\.\/\.\.\/protocol\/[a-z-]+\.js|\.\.\/\.\.\/collective\/random\.js)$/);
      expect(source, file).not.toMatch(/Math\.random|Date\.now|new Date\(|performance\.|\bprocess\.[a-z]|setTimeout|setInterval/);
    }
  });
});
