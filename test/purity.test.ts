// src/protocol and src/collective are pure: no I/O, no clocks, no randomness (DESIGN.md, STYLE.md).
// This reads every .ts file there, parses it with the TypeScript compiler (so comments and strings
// cannot fool it) and names the file and line of anything impure.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PURE_DIRS = ['src/protocol', 'src/collective'];

/** Named so a violation says why; anything else outside the allow-list fails too. */
const FORBIDDEN_MODULES = [
  'ws',
  'net',
  'child_process',
  'fs',
  'timers',
  'dgram',
  'http',
  'https',
  'http2',
  'tls',
  'os',
  'worker_threads',
  'cluster',
  'perf_hooks',
  'process',
  'readline',
];
const ALLOWED_MODULES = new Set(['@node-rs/crc32', 'zod', 'node:crypto']);
const ALLOWED_FROM_CRYPTO = new Set(['createHash']);

/** Global functions that schedule work on a clock. */
const TIMER_GLOBALS = new Set(['setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate']);
/** `object.member` reads of a clock, the process or randomness. */
const FORBIDDEN_MEMBERS: Record<string, Set<string> | 'all'> = {
  Date: new Set(['now']),
  performance: 'all',
  Math: new Set(['random']),
  crypto: new Set(['getRandomValues', 'randomUUID', 'randomBytes', 'randomInt']),
  process: 'all',
};

function moduleName(spec: string): string {
  const bare = spec.startsWith('node:') ? spec.slice(5) : spec;
  return bare.split('/')[0]!;
}

/** Violations in one file, as "file:line: what". `file` is relative to the repository root. */
function purityViolations(file: string, source: string): string[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const out: string[] = [];
  const report = (node: ts.Node, what: string) => {
    const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
    out.push(`${file}:${line + 1}: ${what}`);
  };

  const checkSpecifier = (node: ts.Node, spec: string) => {
    if (spec.startsWith('.')) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
      if (!PURE_DIRS.some((d) => target === d || target.startsWith(`${d}/`))) {
        report(node, `imports '${spec}', outside ${PURE_DIRS.join(' and ')}`);
      }
      return;
    }
    if (FORBIDDEN_MODULES.includes(moduleName(spec))) {
      report(node, `imports '${spec}': pure code does no I/O and reads no clock; pass it in from src/runtime`);
    } else if (!ALLOWED_MODULES.has(spec)) {
      report(node, `imports '${spec}', not allowed in pure code (allowed: ${[...ALLOWED_MODULES].join(', ')})`);
    }
  };

  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const spec = node.moduleSpecifier.text;
      checkSpecifier(node, spec);
      if (spec === 'node:crypto') {
        const names: string[] = [];
        let opaque = false;
        if (ts.isImportDeclaration(node)) {
          const clause = node.importClause;
          if (!clause || clause.name) opaque = true;
          const bindings = clause?.namedBindings;
          if (bindings && ts.isNamespaceImport(bindings)) opaque = true;
          if (bindings && ts.isNamedImports(bindings)) for (const el of bindings.elements) names.push((el.propertyName ?? el.name).text);
        } else {
          const clause = node.exportClause;
          if (!clause || ts.isNamespaceExport(clause)) opaque = true;
          else for (const el of clause.elements) names.push((el.propertyName ?? el.name).text);
        }
        if (opaque) report(node, `imports all of 'node:crypto': name createHash only`);
        for (const n of names) if (!ALLOWED_FROM_CRYPTO.has(n)) report(node, `imports ${n} from 'node:crypto': only createHash is allowed`);
      }
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const expr = node.moduleReference.expression;
      if (ts.isStringLiteral(expr)) checkSpecifier(node, expr.text);
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      if (ts.isLiteralTypeNode(arg) && ts.isStringLiteral(arg.literal)) checkSpecifier(node, arg.literal.text);
    } else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const isImport = callee.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(callee) && callee.text === 'require';
      if (isImport || isRequire) {
        const arg = node.arguments[0];
        if (arg && ts.isStringLiteralLike(arg)) checkSpecifier(node, arg.text);
        else report(node, `${isImport ? 'import()' : 'require()'} with a computed module name`);
      }
      if (ts.isIdentifier(callee) && callee.text === 'Date') report(node, 'Date() reads the clock');
    } else if (ts.isNewExpression(node)) {
      if (ts.isIdentifier(node.expression) && node.expression.text === 'Date' && (node.arguments?.length ?? 0) === 0) {
        report(node, 'new Date() reads the clock');
      }
    } else if (ts.isPropertyAccessExpression(node)) {
      const obj = node.expression;
      const member = node.name.text;
      const owner = ts.isIdentifier(obj) ? obj.text : undefined;
      const rule = owner === undefined ? undefined : FORBIDDEN_MEMBERS[owner];
      if (rule === 'all' || rule?.has(member)) report(node, `uses ${owner}.${member}`);
      if (owner === 'globalThis' && (TIMER_GLOBALS.has(member) || member in FORBIDDEN_MEMBERS)) report(node, `uses globalThis.${member}`);
    } else if (ts.isIdentifier(node) && (TIMER_GLOBALS.has(node.text) || node.text === 'process') && isReference(node)) {
      // `process.x` is reported above; a bare `process` (passed or aliased) is caught here.
      const p = node.parent;
      if (!(node.text === 'process' && ts.isPropertyAccessExpression(p) && p.expression === node)) report(node, `uses ${node.text}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** False for names that are not references to a global: `x.name`, `{ name: … }`, `T.name`. */
function isReference(id: ts.Identifier): boolean {
  const p = id.parent;
  if (ts.isPropertyAccessExpression(p) && p.name === id) return false;
  if (ts.isQualifiedName(p) && p.right === id) return false;
  if ((ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p) || ts.isPropertySignature(p) || ts.isMethodDeclaration(p) || ts.isMethodSignature(p)) && p.name === id) {
    return false;
  }
  if ((ts.isImportSpecifier(p) || ts.isExportSpecifier(p)) && p.propertyName === id) return false;
  return true;
}

function tsFiles(dir: string): string[] {
  const abs = path.join(ROOT, dir);
  return readdirSync(abs, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}

describe('purity of src/protocol and src/collective', () => {
  const files = PURE_DIRS.flatMap(tsFiles);

  it('finds the files it is meant to check', () => {
    expect(files).toContain('src/protocol/frame.ts');
    expect(files).toContain('src/protocol/errors.ts');
    expect(files.some((f) => f.startsWith('src/collective/'))).toBe(true);
  });

  it('has no I/O, clock, timer or randomness in any file', () => {
    const violations = files.flatMap((f) => purityViolations(f, readFileSync(path.join(ROOT, f), 'utf8')));
    expect(violations, violations.join('\n')).toEqual([]);
  });
});

describe('the purity check itself', () => {
  const check = (source: string) => purityViolations('src/collective/x.ts', source);

  it.each([
    ["import WebSocket from 'ws';", "imports 'ws'"],
    ["import { Socket } from 'node:net';", "imports 'node:net'"],
    ["import net from 'net';", "imports 'net'"],
    ["import { spawn } from 'node:child_process';", "imports 'node:child_process'"],
    ["import cp from 'child_process';", "imports 'child_process'"],
    ["import { readFileSync } from 'node:fs';", "imports 'node:fs'"],
    ["import fs from 'fs';", "imports 'fs'"],
    ["import { readFile } from 'node:fs/promises';", "imports 'node:fs/promises'"],
    ["import { setTimeout } from 'node:timers/promises';", "imports 'node:timers/promises'"],
    ["import dgram from 'node:dgram';", "imports 'node:dgram'"],
    ["import http from 'node:http';", "imports 'node:http'"],
    ["import os from 'node:os';", "imports 'node:os'"],
    ["import type { WebSocket } from 'ws';", "imports 'ws'"],
    ["export { WebSocket } from 'ws';", "imports 'ws'"],
    ["const m = await import('node:fs');", "imports 'node:fs'"],
    ["const fs = require('fs');", "imports 'fs'"],
    ["type W = import('ws').WebSocket;", "imports 'ws'"],
    ["import { x } from '../runtime/transport.js';", "outside src/protocol and src/collective"],
    ["import { randomBytes } from 'node:crypto';", 'only createHash is allowed'],
    ["import * as c from 'node:crypto';", "imports all of 'node:crypto'"],
    ['const t = Date.now();', 'uses Date.now'],
    ['const t = new Date();', 'new Date() reads the clock'],
    ['const t = performance.now();', 'uses performance.now'],
    ['const r = Math.random();', 'uses Math.random'],
    ['const r = crypto.randomUUID();', 'uses crypto.randomUUID'],
    ['setTimeout(() => {}, 1);', 'uses setTimeout'],
    ['const h = setInterval(f, 5);', 'uses setInterval'],
    ['setImmediate(f);', 'uses setImmediate'],
    ['globalThis.setTimeout(f, 1);', 'uses globalThis.setTimeout'],
    ['const e = process.env.SEED;', 'uses process.env'],
    ['process.nextTick(f);', 'uses process.nextTick'],
    ['const p = process;', 'uses process'],
  ])('flags %s', (source, what) => {
    const v = check(`// line 1\n${source}\n`);
    expect(v.length, v.join('\n')).toBeGreaterThan(0);
    expect(v[0]).toContain('src/collective/x.ts:2: ');
    expect(v[0]).toContain(what);
  });

  it.each([
    "import { crc32c } from '@node-rs/crc32';",
    "import { z } from 'zod';",
    "import { createHash } from 'node:crypto';",
    "import { RingswarmError } from '../protocol/errors.js';",
    "import { mod } from './ring.js';",
    '// Never call Date.now, setTimeout or Math.random here; process.env is off limits.',
    "const msg = 'use setTimeout in src/runtime, not process.hrtime';",
    'const o = { setTimeout: 5, process: 1 }; o.process; o.setTimeout;',
    'const d = new Date(0);',
    'interface Clock { now(): number } const c: Clock = { now: () => 0 }; c.now();',
  ])('allows %s', (source) => {
    expect(check(source)).toEqual([]);
  });
});
