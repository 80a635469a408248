// Build scripts/c-ring.c (the plain C TCP ring all-reduce) with `cc -O2` at run time: it is
// committed as source only. Used by `npm run bench:peers` and its test; compileC also by
// scripts/build-native.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root, from scripts/ (vitest, TypeScript) or dist/scripts/ (compiled). */
function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error('c-ring-build: project root not found');
}

export const PROJECT_ROOT = projectRoot();
export const C_RING_SOURCE = path.join(PROJECT_ROOT, 'scripts', 'c-ring.c');

export type CBuild = { ok: true; bin: string; cc: string } | { ok: false; reason: string };
export type CRingBuild = CBuild;

/**
 * Compile `source` with `cc <flags>` into `out`; the file is written beside under a temporary name
 * and renamed, so a concurrent run never loads or executes half a file.
 */
export function compileC(source: string, out: string, flags: string[], cc = process.env.CC || 'cc'): CBuild {
  if (!existsSync(source)) return { ok: false, reason: `${source} not found` };
  const version = spawnSync(cc, ['--version'], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (version.error) return { ok: false, reason: `no C compiler: \`${cc}\` could not run (${version.error.message})` };
  mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync(cc, [...flags, '-o', tmp, source], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error || r.status !== 0) {
    rmSync(tmp, { force: true });
    const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`;
    return { ok: false, reason: `\`${cc} ${flags.join(' ')} ${path.basename(source)}\` failed: ${why}` };
  }
  renameSync(tmp, out);
  return { ok: true, bin: out, cc: (version.stdout ?? '').split('\n')[0].trim() };
}

/** Compile the C ring into `outDir` (default dist/) as `c-ring`. */
export function buildCRing(outDir = path.join(PROJECT_ROOT, 'dist'), cc = process.env.CC || 'cc'): CRingBuild {
  return compileC(C_RING_SOURCE, path.join(outDir, 'c-ring'), ['-O2'], cc);
}
