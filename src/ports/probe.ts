import net from 'node:net';

/**
 * Probes of loopback ports, for the port allocator (is a port free to hand out?), a server's start
 * (does something hold its port already?) and `e2e-lanes status` (does a lane server listen?).
 *
 * A port is probed on both loopback addresses, `127.0.0.1` and `::1`: `localhost` resolves to either
 * on Node ≥ 17, so a listener on one family would still collide. A family the host lacks (no IPv6)
 * holds nothing: it never makes a port count as taken, nor a probe fail.
 */
export const LOOPBACK_HOSTS: readonly string[] = ['127.0.0.1', '::1'];

/** How long a connect probe waits for an answer by default. */
const CONNECT_TIMEOUT_MS = 500;

/**
 * What binding host:port exclusively found: `free` (it bound, and was closed at once), `taken`
 * (`EADDRINUSE`, or `EACCES`: not ours to use), `absent` (the host has no such address, e.g. no
 * IPv6 loopback: nothing can hold the port on it).
 */
export type BindProbe = 'free' | 'taken' | 'absent';

/** Errors of a bind that say the address does not exist here. */
const ABSENT_ADDRESS = new Set(['EADDRNOTAVAIL', 'EAFNOSUPPORT']);

/**
 * Binds `port` on `host` exclusively and closes it at once.
 *
 * @throws the bind's error when it says nothing about the port (neither taken nor absent).
 */
export function probeBind(port: number, host: string): Promise<BindProbe> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES') resolve('taken');
      else if (error.code && ABSENT_ADDRESS.has(error.code)) resolve('absent');
      else reject(error);
    });
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve('free')));
  });
}

/** True when `port` could be bound on `host` (and was closed at once). */
export async function canBind(port: number, host: string): Promise<boolean> {
  return (await probeBind(port, host)) === 'free';
}

let ipv6: Promise<boolean> | undefined;

/** Whether this host has the IPv6 loopback `::1` (cached). */
export function hasIpv6Loopback(): Promise<boolean> {
  ipv6 ??= probeBind(0, '::1').then(
    (found) => found !== 'absent',
    () => false,
  );
  return ipv6;
}

/** True when a TCP connection to host:port succeeds within `timeoutMs`. */
export function acceptsConnections(port: number, host: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (result: boolean): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export interface ProbeOptions {
  /** The addresses probed. @default LOOPBACK_HOSTS */
  hosts?: readonly string[];
  /** How long a connect probe waits. @default 500 */
  connectTimeoutMs?: number;
}

/** A port is free for a lane only if it binds on every loopback address the host has. */
export async function isPortFree(port: number, options: ProbeOptions = {}): Promise<boolean> {
  const found = await Promise.all((options.hosts ?? LOOPBACK_HOSTS).map((host) => probeBind(port, host)));
  return !found.includes('taken');
}

/** Why a port counts as taken, for messages. */
export interface PortInUse {
  host: string;
  how: 'accepts connections' | 'cannot be bound';
}

/**
 * Whether something already holds `port` on loopback: first a connect probe, then a bind probe, on
 * every loopback address.
 *
 * @returns the first evidence of use, or undefined when the port is free on every address the host has.
 */
export async function findPortInUse(port: number, options: ProbeOptions = {}): Promise<PortInUse | undefined> {
  const hosts = options.hosts ?? LOOPBACK_HOSTS;
  for (const host of hosts) {
    if (await acceptsConnections(port, host, options.connectTimeoutMs)) return { host, how: 'accepts connections' };
  }
  for (const host of hosts) {
    if ((await probeBind(port, host)) === 'taken') return { host, how: 'cannot be bound' };
  }
  return undefined;
}

/** Whether something accepts TCP connections on `port` on any loopback address. */
export async function isListening(port: number, options: ProbeOptions = {}): Promise<boolean> {
  const answers = await Promise.all((options.hosts ?? LOOPBACK_HOSTS).map((host) => acceptsConnections(port, host, options.connectTimeoutMs)));
  return answers.includes(true);
}
