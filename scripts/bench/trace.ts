/**
 * A library-level tracer for profiling one toolkit call without touching src/: while installed it
 * times every `pg` connect / query / end (by SQL statement), every `proper-lockfile` lock acquire
 * and release, and every `fs.fsync`. Spans must not overlap (profile one call at a time); whatever
 * the spans do not cover is the toolkit's own JavaScript and file I/O.
 */
import fs from 'node:fs';
import pg from 'pg';
import lockfile from 'proper-lockfile';
import { mean } from './measure.ts';

type AnyFn = (...args: unknown[]) => unknown;

const SPAN_CONNECT = 'pg: connect (TCP, SCRAM auth, backend start)';
const SPAN_END = 'pg: disconnect (client.end)';
const SPAN_LOCK = 'state file: lock acquire + release (proper-lockfile)';
const SPAN_FSYNC = 'state file: fsync (write-file-atomic)';
const SPAN_REST = 'rest: JavaScript, state file read/parse/write, /proc reads, event loop';

export class Tracer {
  #spans = new Map<string, number>();
  #holds: Array<[number, number]> = [];
  readonly #restore: Array<() => void> = [];

  private constructor() {}

  /** Installs the hooks; call `stop()` to remove them. */
  static start(): Tracer {
    const tracer = new Tracer();
    tracer.#install();
    return tracer;
  }

  /** The spans recorded since the last `take()` (label → ms), and starts afresh. */
  take(): Map<string, number> {
    const spans = this.#spans;
    this.#spans = new Map();
    return spans;
  }

  /** Lock holds since the last call, as [acquired, released] (`performance.now()`), sorted, and their total. */
  takeHolds(): { holds: Array<[number, number]>; heldMs: number } {
    const holds = this.#holds.sort((a, b) => a[0] - b[0]);
    this.#holds = [];
    return { holds, heldMs: holds.reduce((sum, [from, to]) => sum + (to - from), 0) };
  }

  stop(): void {
    for (const restore of this.#restore.splice(0).reverse()) restore();
  }

  #add(label: string, ms: number): void {
    this.#spans.set(label, (this.#spans.get(label) ?? 0) + ms);
  }

  /** Wraps a promise-returning call so that its duration is added under `label`. */
  #timePromise(label: (args: unknown[]) => string | undefined, original: AnyFn): AnyFn {
    const add = this.#add.bind(this);
    return function (this: unknown, ...args: unknown[]) {
      const started = performance.now();
      const result = original.apply(this, args);
      const name = label(args);
      if (name !== undefined && result instanceof Promise) {
        return result.finally(() => add(name, performance.now() - started));
      }
      return result;
    };
  }

  #patch<T extends object, K extends keyof T>(target: T, key: K, replacement: T[K]): void {
    const original = target[key];
    target[key] = replacement;
    this.#restore.push(() => {
      target[key] = original;
    });
  }

  #install(): void {
    const client = pg.Client.prototype as unknown as Record<'connect' | 'query' | 'end', AnyFn>;
    const withoutCallback = (span: string) => (args: unknown[]) => (typeof args.at(-1) === 'function' ? undefined : span);
    this.#patch(client, 'connect', this.#timePromise(withoutCallback(SPAN_CONNECT), client.connect));
    this.#patch(client, 'end', this.#timePromise(withoutCallback(SPAN_END), client.end));
    this.#patch(client, 'query', this.#timePromise((args) => (typeof args.at(-1) === 'function' ? undefined : `sql: ${sqlLabel(args[0])}`), client.query));

    const add = this.#add.bind(this);
    const holds = (): Array<[number, number]> => this.#holds;
    const lock = lockfile.lock;
    this.#patch(lockfile, 'lock', (async (...args: Parameters<typeof lockfile.lock>) => {
      const started = performance.now();
      const release = await lock(...args);
      const acquired = performance.now();
      add(SPAN_LOCK, acquired - started);
      return async () => {
        const releasing = performance.now();
        holds().push([acquired, releasing]);
        try {
          await release();
        } finally {
          add(SPAN_LOCK, performance.now() - releasing);
        }
      };
    }) as typeof lockfile.lock);

    const fsync = fs.fsync;
    this.#patch(fs, 'fsync', ((fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
      const started = performance.now();
      fsync(fd, (error) => {
        add(SPAN_FSYNC, performance.now() - started);
        callback(error);
      });
    }) as typeof fs.fsync);
  }
}

/** A statement without its names and values: `CREATE DATABASE "…" TEMPLATE "…" STRATEGY WAL_LOG`. */
function sqlLabel(query: unknown): string {
  const text = typeof query === 'string' ? query : typeof (query as { text?: unknown } | null)?.text === 'string' ? (query as { text: string }).text : '(query object)';
  const label = text
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/"(?:[^"]|"")*"/g, '"…"')
    .replace(/'(?:[^']|'')*'/g, "'…'");
  return label.length > 64 ? `${label.slice(0, 63)}…` : label;
}

/**
 * The mean of every span over `traces` (one per traced call, `totals` their wall times), the part
 * no span covers as {@link SPAN_REST}: Markdown rows (step, ms, share; biggest first) and the means by label.
 */
export function summarize(traces: ReadonlyArray<Map<string, number>>, totals: readonly number[]): { rows: string[][]; byLabel: Map<string, number> } {
  const labels = new Set(traces.flatMap((trace) => [...trace.keys()]));
  const byLabel = new Map([...labels].map((label) => [label, mean(traces.map((trace) => trace.get(label) ?? 0))] as const));
  const total = mean(totals);
  const covered = [...byLabel.values()].reduce((sum, ms) => sum + ms, 0);
  byLabel.set(SPAN_REST, Math.max(0, total - covered));
  const rows = [...byLabel]
    .sort((a, b) => b[1] - a[1])
    .map(([label, ms]) => [label.startsWith('sql: ') ? `sql: \`${label.slice(5)}\`` : label, ms.toFixed(2), `${((ms / total) * 100).toFixed(0)} %`]);
  rows.push(['**total**', total.toFixed(2), '100 %']);
  return { rows, byLabel };
}
