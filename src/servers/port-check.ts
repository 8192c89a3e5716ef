import net from 'node:net';

/** Loopback addresses of both families: `localhost` may be either on Node ≥ 17. */
const LOOPBACK_HOSTS = ['127.0.0.1', '::1'] as const;
const CONNECT_TIMEOUT_MS = 500;

/** Why a port counts as taken, for messages. */
export interface PortInUse {
  host: string;
  how: 'accepts connections' | 'cannot be bound';
}

/**
 * Whether something already holds `port` on loopback: first a connect probe, then a bind probe, on
 * 127.0.0.1 and ::1. A family the host lacks (no IPv6) is skipped.
 *
 * @returns the first evidence of use, or undefined when the port is free on both families.
 */
export async function findPortInUse(port: number): Promise<PortInUse | undefined> {
  for (const host of LOOPBACK_HOSTS) {
    if (await accepts(host, port)) return { host, how: 'accepts connections' };
  }
  for (const host of LOOPBACK_HOSTS) {
    if (!(await canBind(host, port))) return { host, how: 'cannot be bound' };
  }
  return undefined;
}

/** True when a TCP connection to host:port succeeds. @internal */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (result: boolean): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** False only when binding host:port fails because it is taken (or forbidden). @internal */
function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      // EADDRNOTAVAIL / EAFNOSUPPORT: this family is not configured here, so nothing can hold the port on it.
      resolve(error.code !== 'EADDRINUSE' && error.code !== 'EACCES');
    });
    server.listen({ host, port, exclusive: true, ipv6Only: host === '::1' }, () => {
      server.close(() => resolve(true));
    });
  });
}
