import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/** Thrown by request handlers to answer with a JSON error and the given status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

/** Reads the whole request body, refusing more than `limit` bytes (413). */
export async function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `request body larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Reads a JSON object body (400 when it is missing, malformed or not an object). */
export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = (await readBody(req)).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new HttpError(400, 'request body must be valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new HttpError(400, 'request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

/** The value of a required environment variable, or exit(1) with a message naming it. */
export function requireEnv(name: string, service: string): string {
  const value = process.env[name];
  if (!value) {
    console.error(`${service}: environment variable ${name} is required`);
    process.exit(1);
  }
  return value;
}

/** PORT as a TCP port number (0 = pick a free one), or exit(1). */
export function requirePort(service: string): number {
  const raw = requireEnv('PORT', service);
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65_535) {
    console.error(`${service}: PORT must be an integer between 0 and 65535, got ${JSON.stringify(raw)}`);
    process.exit(1);
  }
  return port;
}

/** Listens on 127.0.0.1:port and resolves with the bound port; exit(1) if that fails (e.g. port in use). */
export function listen(server: Server, port: number, service: string): Promise<number> {
  return new Promise((resolve) => {
    const fail = (error: NodeJS.ErrnoException): void => {
      console.error(`${service}: cannot listen on 127.0.0.1:${port}: ${error.code ?? error.message}`);
      process.exit(1);
    };
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', fail);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

/**
 * On SIGTERM/SIGINT: stop accepting connections, let in-flight requests finish (at most
 * `graceMs`), run `cleanup`, exit 0. A second signal exits at once.
 */
export function shutdownOnSignals(server: Server, service: string, cleanup: () => Promise<void>, graceMs = 5_000): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1);
    stopping = true;
    console.log(`${service}: ${signal} received, shutting down`);
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    force.unref();
    server.close(() => {
      clearTimeout(force);
      cleanup().then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(`${service}: cleanup failed: ${error instanceof Error ? error.message : String(error)}`);
          process.exit(1);
        },
      );
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
