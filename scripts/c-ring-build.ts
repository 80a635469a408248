// Build scripts/c-ring.c (the plain C TCP ring all-reduce) with `cc -O2` at run time: it is
// committed as source only. Used by `npm run bench:peers` and its test.
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

export const C_RING_SOURCE = path.join(projectRoot(), 'scripts', 'c-ring.c');

export type CRingBuild = { ok: true; bin: string; cc: string } | { ok: false; reason: string };

/**
 * Compile the C ring into `outDir` (default dist/) as `c-ring`; the binary is written beside
 * under a temporary name and renamed, so a concurrent run never executes half a file.
 */
export function buildCRing(outDir = path.join(projectRoot(), 'dist'), cc = process.env.CC || 'cc'): CRingBuild {
  if (!existsSync(C_RING_SOURCE)) return { ok: false, reason: `${C_RING_SOURCE} not found` };
  const version = spawnSync(cc, ['--version'], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (version.error) return { ok: false, reason: `no C compiler: \`${cc}\` could not run (${version.error.message})` };
  mkdirSync(outDir, { recursive: true });
  const bin = path.join(outDir, 'c-ring');
  const tmp = `${bin}.${process.pid}.tmp`;
  const r = spawnSync(cc, ['-O2', '-o', tmp, C_RING_SOURCE], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error || r.status !== 0) {
    rmSync(tmp, { force: true });
    const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`;
    return { ok: false, reason: `\`${cc} -O2 ${path.basename(C_RING_SOURCE)}\` failed: ${why}` };
  }
  renameSync(tmp, bin);
  return { ok: true, bin, cc: (version.stdout ?? '').split('\n')[0].trim() };
}
