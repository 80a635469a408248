// The addresses a coordinator or worker bound to every interface advertises (light: `ringswarm
// worker` needs them without the modules that check a job).
import { hostname, networkInterfaces } from 'node:os';

export const isWildcard = (h: string): boolean => h === '0.0.0.0' || h === '::' || h === '[::]';

/** This host's first non-internal IPv4 address (what peers on other hosts can dial), else its name. */
export function externalAddress(): string {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return hostname();
}
