// The app's API: a plain Node HTTP server on PORT, with Prisma on DATABASE_URL.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createPrismaClient } from '../db.ts';

const port = Number(process.env['PORT'] ?? 3001);
const prisma = createPrismaClient();

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  const body: unknown = JSON.parse(text || '{}');
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { pathname } = new URL(req.url ?? '/', 'http://localhost');
  const done = /^\/api\/tasks\/(\d+)\/done$/.exec(pathname);
  if (req.method === 'GET' && pathname === '/health') {
    await prisma.$queryRaw`SELECT 1`;
    return send(res, 200, { ok: true });
  }
  if (req.method === 'GET' && pathname === '/api/info') {
    const [row] = await prisma.$queryRaw<Array<{ database: string }>>`SELECT current_database() AS database`;
    return send(res, 200, { database: row?.database });
  }
  if (req.method === 'GET' && pathname === '/api/tasks') {
    const tasks = await prisma.task.findMany({ include: { list: true }, orderBy: { id: 'asc' } });
    return send(res, 200, tasks.map((task) => ({ id: task.id, title: task.title, list: task.list.name, done: task.doneAt !== null })));
  }
  if (req.method === 'POST' && done) {
    const task = await prisma.task.update({ where: { id: Number(done[1]) }, data: { doneAt: new Date() } });
    return send(res, 200, { id: task.id, done: true });
  }
  return send(res, 404, { error: `no route for ${req.method} ${pathname}` });
}

const server = createServer((req, res) => {
  handle(req, res).catch((error: unknown) => {
    console.error(`${req.method} ${req.url} failed: ${error instanceof Error ? error.message : String(error)}`);
    if (!res.headersSent) send(res, 500, { error: 'internal error' });
  });
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void prisma.$disconnect().finally(() => process.exit(0));
});
server.listen(port, '127.0.0.1', () => console.log(`backend: listening on http://127.0.0.1:${port}`));
