// `ringswarm worker`'s action: its identity from flags and the launcher's environment, then the
// worker in this process.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { workerIdentity, type WorkerFlags } from '../api/launcher.js';
import { externalAddress, isWildcard } from '../api/address.js';
import { startWorkerProcess } from '../worker/start.js';

export interface WorkerCommandFlags extends WorkerFlags {
  id?: string;
  host?: string;
  connectTimeoutMs: number;
}

export function startWorker(o: WorkerCommandFlags): void {
  const id = workerIdentity(o, process.env, (f) => readFileSync(f, 'utf8'));
  // Told to advertise another host's address, it must listen beyond loopback for its peers to reach it.
  const bind: string = o.host ?? (id.advertise && id.advertise !== '127.0.0.1' && id.advertise !== 'localhost' ? '0.0.0.0' : '127.0.0.1');
  const advertise = id.advertise ?? (isWildcard(bind) ? externalAddress() : null);
  const r = id.launcher.rank;
  startWorkerProcess({
    controlUrl: id.controlUrl,
    token: id.token,
    workerId: o.id ?? `${r !== null ? `rank${r}-` : 'join-'}${hostname()}-${process.pid}`,
    spawned: false,
    host: bind,
    advertise,
    launcher: id.launcher,
    worldSize: id.worldSize,
    connectTimeoutMs: o.connectTimeoutMs,
  });
}
