import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { HttpError, listen, readBody, requireEnv, requirePort, sendJson, shutdownOnSignals } from '../shared/http.ts';
import { PAGE_HTML } from './page.ts';

const SERVICE = 'frontend';
const port = requirePort(SERVICE);
const backendUrl = requireEnv('BACKEND_URL', SERVICE).replace(/\/+$/, '');
if (!URL.canParse(backendUrl)) {
  console.error(`${SERVICE}: BACKEND_URL must be an absolute URL such as http://127.0.0.1:4000`);
  process.exit(1);
}

/** Forwards /api/* to BACKEND_URL, passing status, content type and body through unchanged. */
async function proxy(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  const body = method === 'GET' || method === 'HEAD' ? undefined : new Uint8Array(await readBody(req));
  const headers: Record<string, string> = { accept: 'application/json' };
  if (req.headers['content-type']) headers['content-type'] = req.headers['content-type'];
  let upstream: Response;
  try {
    upstream = await fetch(`${backendUrl}${req.url ?? '/'}`, { method, headers, body, signal: AbortSignal.timeout(15_000) });
  } catch (error) {
    console.error(`${SERVICE}: backend request ${method} ${req.url} failed: ${error instanceof Error ? error.message : String(error)}`);
    throw new HttpError(502, 'backend unavailable');
  }
  const payload = Buffer.from(await upstream.arrayBuffer());
  res.writeHead(upstream.status, {
    'content-type': upstream.headers.get('content-type') ?? 'application/octet-stream',
    'content-length': payload.length,
    'cache-control': 'no-store',
  });
  res.end(payload);
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { pathname } = new URL(req.url ?? '/', 'http://localhost');
  if (pathname === '/api' || pathname.startsWith('/api/')) return proxy(req, res);
  if (req.method === 'GET' && pathname === '/health') return sendJson(res, 200, { ok: true });
  if (req.method === 'GET' && pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    return void res.end(PAGE_HTML);
  }
  throw new HttpError(404, `no route for ${req.method} ${pathname}`);
}

const server = createServer((req, res) => {
  handle(req, res).catch((error: unknown) => {
    if (res.headersSent) return void res.destroy();
    if (error instanceof HttpError) return sendJson(res, error.status, { error: error.message });
    console.error(`${SERVICE}: ${req.method} ${req.url} failed: ${error instanceof Error ? error.message : String(error)}`);
    sendJson(res, 500, { error: 'internal error' });
  });
});

shutdownOnSignals(server, SERVICE, async () => {});
// DEMO_FRONTEND_START_MS: wait this long before listening, as a framework's dev server compiles
// first (the bench uses it to show a real app's boot; `next dev` takes seconds).
await new Promise((resolve) => setTimeout(resolve, Number(process.env.DEMO_FRONTEND_START_MS ?? 0)));
const boundPort = await listen(server, port, SERVICE);
console.log(`${SERVICE}: listening on http://127.0.0.1:${boundPort} (pid ${process.pid}), proxying /api to the backend`);
