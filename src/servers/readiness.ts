import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import createDebug from 'debug';

const log = createDebug('e2e-lanes:servers');

/**
 * Pauses between polls: 25, 50, 100 ms, then every 100 ms for 10 s, then every 500 ms. A refused
 * connection on loopback costs microseconds, and every pause is time a lane may sit healthy but
 * unused: a server that is up at 650 ms is seen at 700 ms, not at 850 ms (or 1.85 s for the next).
 */
const BACKOFF_MS = [25, 50, 100] as const;
const STEADY_MS = 100;
const SLOW_AFTER_MS = 10_000;
const SLOW_MS = 500;

/** The pause after poll number `polls` (1-based), `elapsedMs` after polling began. @internal */
export function pauseAfter(polls: number, elapsedMs: number): number {
  return BACKOFF_MS[polls - 1] ?? (elapsedMs < SLOW_AFTER_MS ? STEADY_MS : SLOW_MS);
}
/** No single GET may take longer than this (or the time left). */
const REQUEST_TIMEOUT_MS = 2_000;
/** How much of an unhealthy answer's body is kept for the error message. */
const BODY_BYTES = 200;

/** How the process ended. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be spawned at all. */
  error?: Error;
}

export type Readiness =
  | { kind: 'healthy'; polls: number }
  | { kind: 'timeout'; polls: number; lastProblem: string }
  | { kind: 'exited'; polls: number; exit: ExitInfo }
  /** Only 5xx answers for `unhealthyAfter` ms: the server is up but broken. */
  | { kind: 'unhealthy'; polls: number; forMs: number; status: number; body: string };

export interface WaitOptions {
  /** URL to GET, or undefined to only check that the process has not exited right away. */
  url: string | undefined;
  timeout: number;
  /** Give up once every answer for this long was a 5xx (undefined: wait for the whole timeout). */
  unhealthyAfter?: number | undefined;
  /** Settles when the process exits. */
  exited: Promise<ExitInfo>;
  signal?: AbortSignal | undefined;
}

/**
 * Polls `url` with backoff until it answers 2xx/3xx, raced against the process exiting and the
 * deadline. Rejects only when `signal` aborts (with its reason). Bounded in time and in polls.
 */
export async function waitUntilHealthy(options: WaitOptions): Promise<Readiness> {
  const { url, timeout, exited, signal, unhealthyAfter } = options;
  signal?.throwIfAborted();
  const stop = new AbortController();
  const abandon = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  let exitInfo: ExitInfo | undefined;
  void exited.then((exit) => {
    exitInfo = exit;
    stop.abort();
  });
  const deadline = Date.now() + timeout;
  const started = Date.now();
  const maxPolls = Math.ceil(timeout / BACKOFF_MS[0]) + BACKOFF_MS.length + 1;
  let polls = 0;
  let lastProblem = 'not polled yet';
  /** When the current run of 5xx answers began (undefined: the last poll was not a 5xx). */
  let failingSince: number | undefined;

  try {
    if (url === undefined) {
      // Nothing to poll: give the process a moment to fail fast (bad command, missing file).
      await sleep(Math.min(BACKOFF_MS[0], timeout), undefined, { signal: abandon }).catch(() => {});
    }
    while (url !== undefined && polls < maxPolls && !abandon.aborted) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      polls++;
      const requestTimeout = Math.min(left, REQUEST_TIMEOUT_MS);
      const answer = await probe(url, requestTimeout, abandon);
      if (exitInfo || abandon.aborted) break;
      if (answer === undefined) return { kind: 'healthy', polls };
      // A last request cut short by the deadline says less than the answer before it: keep that one.
      const cutByDeadline = answer.timedOut === true && requestTimeout < REQUEST_TIMEOUT_MS && polls > 1;
      if (!cutByDeadline) lastProblem = answer.problem;
      log('GET %s: %s (poll %d)', url, answer.problem, polls);
      if (answer.status !== undefined && answer.status >= 500) {
        failingSince ??= Date.now();
        const forMs = Date.now() - failingSince;
        if (unhealthyAfter !== undefined && forMs >= unhealthyAfter) return { kind: 'unhealthy', polls, forMs, status: answer.status, body: answer.body ?? '' };
      } else {
        failingSince = undefined;
      }
      const pause = Math.min(pauseAfter(polls, Date.now() - started), deadline - Date.now());
      if (pause > 0) await sleep(pause, undefined, { signal: abandon }).catch(() => {});
    }
    signal?.throwIfAborted();
    if (exitInfo) return { kind: 'exited', polls, exit: exitInfo };
    if (url === undefined) return { kind: 'healthy', polls };
    return { kind: 'timeout', polls, lastProblem };
  } finally {
    stop.abort();
  }
}

/** What went wrong with one GET; `status` and the start of `body` when the server answered. */
interface Problem {
  problem: string;
  /** No answer came within the request's own timeout. */
  timedOut?: boolean;
  status?: number;
  body?: string;
}

/** One check of `url`: a GET, a TCP connection or a file's existence. Resolves undefined when ready, else what went wrong. @internal */
function probe(url: string, timeout: number, signal: AbortSignal): Promise<Problem | undefined> {
  if (url.startsWith('tcp://')) return probeTcp(new URL(url), timeout, signal);
  if (url.startsWith('file://')) return Promise.resolve(existsSync(fileURLToPath(url)) ? undefined : { problem: 'the file does not exist yet' });
  return probeHttp(url, timeout, signal);
}

/** Passed on to the socket (not in the request options' types). */
const AUTO_SELECT_FAMILY = { autoSelectFamily: true } as object;

/** One TCP connection to `host:port`, closed at once. */
function probeTcp(url: URL, timeout: number, signal: AbortSignal): Promise<Problem | undefined> {
  return new Promise((resolve) => {
    // autoSelectFamily: `localhost` may resolve to ::1 first, the server listens on 127.0.0.1 (Node's default since 20, set here
    // so that `--no-network-family-autoselection` does not break the check).
    const socket = net.connect({ host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port), signal, timeout, autoSelectFamily: true });
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve({ problem: `no connection within ${timeout} ms`, timedOut: true });
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ problem: error.code ?? error.message }));
  });
}

/** One GET. */
function probeHttp(url: string, timeout: number, signal: AbortSignal): Promise<Problem | undefined> {
  return new Promise((resolve) => {
    let answered: (() => void) | undefined;
    // agent: false + Connection: close: no pooled keep-alive socket that would delay the server's graceful shutdown.
    // Accept as a browser sends it: some dev servers (Vite 4) answer 404 to a GET without one.
    const request = http.get(url, { agent: false, ...AUTO_SELECT_FAMILY, headers: { connection: 'close', accept: 'text/html,*/*' }, timeout, signal }, (response) => {
      const status = response.statusCode ?? 0;
      if (status >= 200 && status < 400) {
        response.resume();
        return resolve(undefined);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      answered = () => {
        const body = Buffer.concat(chunks).subarray(0, BODY_BYTES).toString('utf8').replace(/\uFFFD$/, '');
        resolve({ problem: `answered HTTP ${status}${body.trim() === '' ? '' : ` ${JSON.stringify(body.trim())}`}`, status, body });
        response.destroy();
      };
      response.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= BODY_BYTES) answered?.();
      });
      response.once('end', () => answered?.());
      response.once('error', () => answered?.());
      response.once('close', () => answered?.());
    });
    request.once('timeout', () => {
      request.destroy();
      if (answered) answered();
      else resolve({ problem: `no answer within ${timeout} ms`, timedOut: true });
    });
    request.once('error', (error: NodeJS.ErrnoException) => {
      if (answered) answered();
      else resolve({ problem: error.code ?? error.message });
    });
  });
}
