// The coordinator's side of the operator's interface (src/protocol/operator.ts): plain HTTP requests
// on the control port, checked for the job token, routed to the caller's status and inject. The
// answers are JSON; a request without the token is refused like a worker without it, and counted.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InjectRequest, MAX_OPERATOR_BODY_BYTES, OPERATOR_PATHS, type InjectAnswerBody, type JobStatus } from '../protocol/operator.js';

export interface OperatorDesk {
  token: string;
  status(): JobStatus;
  /** Resolves with the fault taken, or rejects with a message saying why not. */
  inject(fault: InjectRequest['fault']): Promise<InjectAnswerBody>;
  /** A request refused for its token (counted with the control server's refusals). */
  refused(line: string): void;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store', Connection: 'close' });
  res.end(text);
}

function tokenOk(req: IncomingMessage, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1]!);
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > MAX_OPERATOR_BODY_BYTES) {
        reject(new HttpError(413, 'RS_ERR_BAD_MESSAGE', `the request body is over ${MAX_OPERATOR_BODY_BYTES} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function route(req: IncomingMessage, desk: OperatorDesk): Promise<[number, unknown]> {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  const method = req.method ?? 'GET';
  const allowed = path === OPERATOR_PATHS.status ? 'GET' : path === OPERATOR_PATHS.inject ? 'POST' : null;
  if (!allowed) throw new HttpError(404, 'RS_ERR_PROTOCOL', `no ${path} here: ${OPERATOR_PATHS.status} (GET) and ${OPERATOR_PATHS.inject} (POST) are`);
  if (!tokenOk(req, desk.token)) {
    desk.refused(`operator request ${method} ${path} from ${req.socket.remoteAddress ?? '?'} refused: RS_ERR_AUTH: no or wrong bearer token`);
    throw new HttpError(401, 'RS_ERR_AUTH', 'no or wrong token: send Authorization: Bearer <the job token>');
  }
  if (method !== allowed) throw new HttpError(405, 'RS_ERR_PROTOCOL', `${path} takes ${allowed}, not ${method}`);
  if (path === OPERATOR_PATHS.status) return [200, desk.status()];
  let body: unknown;
  try {
    body = JSON.parse(await readBody(req));
  } catch (e) {
    if (e instanceof HttpError) throw e;
    throw new HttpError(400, 'RS_ERR_BAD_MESSAGE', 'the body is not JSON: send {"fault": "kill:rank=3"}');
  }
  const parsed = InjectRequest.safeParse(body);
  if (!parsed.success) throw new HttpError(400, 'RS_ERR_BAD_MESSAGE', 'expected {"fault": "<shorthand>"} or {"fault": {<a scenario entry>}}');
  try {
    return [200, await desk.inject(parsed.data.fault)];
  } catch (e) {
    throw new HttpError(409, 'RS_ERR_USAGE', e instanceof Error ? e.message : String(e));
  }
}

/** The request handler for ControlServer.onRequest. */
export function operatorHandler(desk: OperatorDesk): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    route(req, desk).then(
      ([status, body]) => send(res, status, body),
      (e) => {
        const err = e instanceof HttpError ? e : new HttpError(500, 'RS_ERR_INTERNAL', e instanceof Error ? e.message : String(e));
        if (!res.headersSent && !res.destroyed) send(res, err.status, { error: { code: err.code, message: err.message } });
      },
    );
  };
}
