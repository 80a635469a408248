// The operator's side (`ringswarm status`, `ringswarm inject`, scripts): HTTP requests to a running
// coordinator's control port (src/protocol/operator.ts), answers checked against their schemas.
// The schemas (zod: a fifth of a second of CPU to load) are loaded only once an answer is in: a
// request that gets none, and the start of `ringswarm status`, do without them.
import { OPERATOR_PATHS } from '../protocol/operator-paths.js';
import type { InjectAnswerBody, InjectRequest, JobStatus } from '../protocol/operator.js';

const schemas = () => import('../protocol/operator.js');

/** A request the coordinator answered with an error, or one that got no answer. */
export class OperatorRequestError extends Error {
  override name = 'OperatorRequestError';
  constructor(
    message: string,
    /** RS_ERR_USAGE (the fault was refused), RS_ERR_AUTH, …; RS_ERR_PEER_LOST when no coordinator answered. */
    readonly code: string,
    readonly httpStatus: number | null,
  ) {
    super(message);
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** The coordinator's control URL (ws://host:port) as the HTTP base its operator's requests go to. */
export function httpBase(controlUrl: string): string {
  const u = new URL(controlUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  u.pathname = '';
  return u.origin;
}

async function request(controlUrl: string, token: string, path: string, init: { method: 'GET' | 'POST'; body?: unknown }, timeoutMs: number): Promise<unknown> {
  const url = `${httpBase(controlUrl)}${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: init.method,
      headers: { Authorization: `Bearer ${token}`, ...(init.body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    const why = e instanceof Error && e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : ((e as { cause?: Error }).cause?.message ?? String(e));
    throw new OperatorRequestError(`no coordinator answered at ${url}: ${why}`, 'RS_ERR_PEER_LOST', null);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new OperatorRequestError(`${url} answered ${res.status} with no JSON (is it a ringswarm coordinator?): ${text.slice(0, 200)}`, 'RS_ERR_PROTOCOL', res.status);
  }
  if (!res.ok) {
    const err = (await schemas()).OperatorError.safeParse(body);
    throw err.success ? new OperatorRequestError(err.data.error.message, err.data.error.code, res.status) : new OperatorRequestError(`${url} answered ${res.status}`, 'RS_ERR_PROTOCOL', res.status);
  }
  return body;
}

function checked<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { message: string } } }, body: unknown, what: string): T {
  const r = schema.safeParse(body);
  if (!r.success) throw new OperatorRequestError(`the coordinator's ${what} does not match this version's schema: ${r.error.message}`, 'RS_ERR_PROTOCOL', 200);
  return r.data;
}

/** A running job's status. */
export async function fetchStatus(controlUrl: string, token: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<JobStatus> {
  const body = await request(controlUrl, token, OPERATOR_PATHS.status, { method: 'GET' }, timeoutMs);
  return checked<JobStatus>((await schemas()).JobStatus, body, 'status');
}

/** Inject a fault into a running job; rejects with OperatorRequestError (code RS_ERR_USAGE and the reason) when the job refuses it. */
export async function postInject(controlUrl: string, token: string, fault: InjectRequest['fault'], timeoutMs = DEFAULT_TIMEOUT_MS): Promise<InjectAnswerBody> {
  const body = await request(controlUrl, token, OPERATOR_PATHS.inject, { method: 'POST', body: { fault } }, timeoutMs);
  return checked<InjectAnswerBody>((await schemas()).InjectAnswerBody, body, 'answer');
}
