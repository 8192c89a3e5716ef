import { createServer } from 'node:net';

/**
 * Tries to bind `port` on `host` exclusively and closes at once. Resolves true if the bind
 * succeeded, false if the address is in use or not permitted.
 */
export function canBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES') resolve(false);
      else reject(error);
    });
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

let ipv6: Promise<boolean> | undefined;

/** Whether this host can bind on `::1` at all (cached). */
export function hasIpv6Loopback(): Promise<boolean> {
  ipv6 ??= new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port: 0, host: '::1', exclusive: true }, () => server.close(() => resolve(true)));
  });
  return ipv6;
}

/**
 * A port is free for a lane only if it binds on 127.0.0.1 **and** on ::1 (where the host has
 * IPv6): `localhost` resolves to either on Node ≥ 17, so a listener on one family would still
 * collide.
 */
export async function isPortFree(port: number): Promise<boolean> {
  if (!(await canBind(port, '127.0.0.1'))) return false;
  if ((await hasIpv6Loopback()) && !(await canBind(port, '::1'))) return false;
  return true;
}
