// Reading a scenario file's text: its size, YAML or JSON, and where a syntax error is. Pure: the
// caller reads the file (checking its size first with checkScenarioSize) and passes the text in.
import { parseDocument } from 'yaml';
import { formatBytes } from '../../protocol/units.js';
import { MAX_SCENARIO_BYTES, ScenarioError, type Scenario } from './types.js';
import { ROOT_HELP, scenarioFrom } from './validate.js';

/**
 * Refuses a scenario file of `bytes` bytes if it is larger than MAX_SCENARIO_BYTES: call it with
 * the file's size before reading it. Throws ScenarioError naming the limit and the size.
 */
export function checkScenarioSize(bytes: number, fileName: string): void {
  if (bytes <= MAX_SCENARIO_BYTES) return;
  throw new ScenarioError(fileName, [
    `(root): the file is ${formatBytes(bytes)} (${bytes} bytes); a scenario file may be at most ${formatBytes(MAX_SCENARIO_BYTES)} (${MAX_SCENARIO_BYTES} bytes): use a random entry to draw many faults`,
  ]);
}

/**
 * Parses a scenario file's text: YAML for .yaml/.yml, JSON for .json, otherwise JSON if it parses
 * as JSON and YAML if not. Throws ScenarioError listing the problems found (the first
 * MAX_LISTED_ISSUES, and how many more), or if the text is over MAX_SCENARIO_BYTES in UTF-8.
 */
export function parseScenario(text: string, fileName: string): Scenario {
  // UTF-8 takes at least one byte per UTF-16 unit and at most three.
  if (text.length * 3 > MAX_SCENARIO_BYTES) checkScenarioSize(utf8Length(text), fileName);
  const doc = readDocument(text.replace(/^\uFEFF/, ''), fileName);
  if ('issue' in doc) throw new ScenarioError(fileName, [doc.issue]);
  const issues: string[] = [];
  const scenario = scenarioFrom(doc.value, issues);
  if (issues.length > 0) throw new ScenarioError(fileName, issues);
  return scenario;
}

function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

type Parsed = { value: unknown } | { issue: string };

function readDocument(text: string, fileName: string): Parsed {
  if (text.trim() === '') return { issue: `(root): the file is empty; ${ROOT_HELP}` };
  const ext = /\.([^./\\]+)$/.exec(fileName)?.[1]?.toLowerCase();
  if (ext === 'json') return readJson(text);
  if (ext === 'yaml' || ext === 'yml') return readYaml(text);
  const json = readJson(text);
  // YAML is (nearly) a superset of JSON, so when both fail its error is the one worth showing.
  return 'value' in json ? json : readYaml(text);
}

function readYaml(text: string): Parsed {
  const doc = parseDocument(text);
  const error = doc.errors[0];
  if (error !== undefined) {
    const where = error.linePos ? `line ${error.linePos[0].line}, column ${error.linePos[0].col}` : '(root)';
    // yaml appends " at line L, column C:" and a source excerpt; the location is already in front.
    return { issue: `${where}: ${error.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '')}` };
  }
  try {
    return { value: doc.toJS() };
  } catch (e) {
    // Alias bombs and the like: yaml refuses to expand them.
    return { issue: `(root): ${(e as Error).message}` };
  }
}

function readJson(text: string): Parsed {
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    // Node 20's messages often carry no position; find it ourselves and keep only the reason.
    const reason = (e as Error).message.replace(/ at position \d+[\s\S]*$/, '').replace(/, "[\s\S]*" is not valid JSON$/, '');
    const offset = jsonErrorOffset(text);
    if (offset === undefined) return { issue: `(root): ${reason}` };
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    const column = offset - before.lastIndexOf('\n');
    return { issue: `line ${line}, column ${column}: ${reason}` };
  }
}

class JsonStop {
  constructor(readonly offset: number) {}
}

/** The offset of the first JSON syntax error in `t` (a small recogniser of RFC 8259), or undefined if none is found. */
function jsonErrorOffset(t: string): number | undefined {
  let i = 0;
  const stop = (): never => {
    throw new JsonStop(i);
  };
  const space = () => {
    while (i < t.length && ' \t\n\r'.includes(t[i]!)) i++;
  };
  const expect = (c: string) => {
    if (t[i] !== c) stop();
    i++;
  };
  const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const literal = (word: string) => {
    for (const c of word) expect(c);
  };
  const escape = /["\\/bfnrt]|u[0-9a-fA-F]{4}/y;
  const string = () => {
    i++;
    for (;;) {
      if (i >= t.length || t.charCodeAt(i) < 0x20) stop();
      const c = t[i++];
      if (c === '"') return;
      if (c === '\\') {
        escape.lastIndex = i;
        if (!escape.test(t)) stop();
        i = escape.lastIndex;
      }
    }
  };
  const value = (): void => {
    space();
    const c = t[i];
    if (c === '"') return string();
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      space();
      if (t[i] === close) {
        i++;
        return;
      }
      for (;;) {
        if (c === '{') {
          space();
          if (t[i] !== '"') stop();
          string();
          space();
          expect(':');
        }
        value();
        space();
        if (t[i] !== ',') return expect(close);
        i++;
      }
    }
    if (c === 't') return literal('true');
    if (c === 'f') return literal('false');
    if (c === 'n') return literal('null');
    number.lastIndex = i;
    if (!number.test(t)) stop();
    i = number.lastIndex;
  };
  try {
    value();
    space();
    return i < t.length ? i : undefined;
  } catch (e) {
    if (e instanceof JsonStop) return e.offset;
    return undefined; // nesting too deep for the recogniser: no location, the reason still shows
  }
}
