import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createPrismaClient } from '../db.ts';
import { HttpError, listen, readJsonObject, requireEnv, requirePort, sendJson, shutdownOnSignals } from '../shared/http.ts';
import { createPost, createUser, listPosts, listUsers } from './routes.ts';

const SERVICE = 'backend';
const port = requirePort(SERVICE);
const databaseUrl = requireEnv('DATABASE_URL', SERVICE);
const prisma = createPrismaClient(databaseUrl, { maxConnections: 5 });
let boundPort = port;

/** Error text safe for logs: never contains the connection URL or its password. */
function safeMessage(error: unknown): string {
  let message = error instanceof Error ? error.message : String(error);
  const password = URL.canParse(databaseUrl) ? decodeURIComponent(new URL(databaseUrl).password) : '';
  message = message.replaceAll(databaseUrl, '[DATABASE_URL]');
  return password ? message.replaceAll(password, '***') : message;
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { pathname } = new URL(req.url ?? '/', 'http://localhost');
  const route = `${req.method ?? 'GET'} ${pathname}`;
  switch (route) {
    case 'GET /health':
      try {
        await prisma.$queryRaw`SELECT 1`;
        return sendJson(res, 200, { ok: true });
      } catch (error) {
        console.error(`${SERVICE}: health check failed: ${safeMessage(error)}`);
        return sendJson(res, 503, { ok: false, error: 'database unavailable' });
      }
    case 'GET /api/info': {
      const [row] = await prisma.$queryRaw<{ database: string }[]>`SELECT current_database() AS database`;
      return sendJson(res, 200, { database: row?.database, port: boundPort, pid: process.pid });
    }
    case 'GET /api/users':
      return sendJson(res, 200, await listUsers(prisma));
    case 'POST /api/users':
      return sendJson(res, 201, await createUser(prisma, await readJsonObject(req)));
    case 'GET /api/posts':
      return sendJson(res, 200, await listPosts(prisma));
    case 'POST /api/posts':
      return sendJson(res, 201, await createPost(prisma, await readJsonObject(req)));
    default:
      throw new HttpError(404, `no route for ${req.method} ${pathname}`);
  }
}

const server = createServer((req, res) => {
  handle(req, res).catch((error: unknown) => {
    if (res.headersSent) return void res.destroy();
    if (error instanceof HttpError) return sendJson(res, error.status, { error: error.message });
    console.error(`${SERVICE}: ${req.method} ${req.url} failed: ${safeMessage(error)}`);
    sendJson(res, 500, { error: 'internal error' });
  });
});

shutdownOnSignals(server, SERVICE, () => prisma.$disconnect());
boundPort = await listen(server, port, SERVICE);
console.log(`${SERVICE}: listening on http://127.0.0.1:${boundPort} (pid ${process.pid})`);
