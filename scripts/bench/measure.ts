/**
 * Timing, statistics, table and verdict helpers shared by every part of `npm run bench`.
 * Tables are Markdown: readable in a terminal and pasted as is into docs/performance.md.
 */

/** Runs `fn` and measures its wall time in milliseconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { ms: performance.now() - started, value };
}

/** The median of `values` (mean of the two middle ones for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The `p`-th percentile (0-100) by nearest rank; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** Collects named samples, e.g. `samples.add('naive/8', ms)`. */
export class Samples {
  readonly #byKey = new Map<string, number[]>();

  add(key: string, value: number): void {
    const list = this.#byKey.get(key) ?? [];
    list.push(value);
    this.#byKey.set(key, list);
  }

  get(key: string): number[] {
    return this.#byKey.get(key) ?? [];
  }

  median(key: string): number {
    return median(this.get(key));
  }
}

/** `850 ms`, `12.3 ms`, `1.42 s`; `–` for NaN. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1_000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(1)} ms`;
}

/** `min–max` of the samples, e.g. `41.0 ms–57.2 ms`. */
export function fmtRange(values: readonly number[]): string {
  if (values.length === 0) return '–';
  return values.length === 1 ? fmtMs(values[0]!) : `${fmtMs(Math.min(...values))}–${fmtMs(Math.max(...values))}`;
}

/** `4.2×`; `–` for NaN or infinity. */
export function fmtRatio(ratio: number): string {
  if (!Number.isFinite(ratio)) return '–';
  return `${ratio >= 10 ? ratio.toFixed(0) : ratio.toFixed(1)}×`;
}

/** A Markdown table; numbers are right-aligned. */
export function table(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = rows.map((row) => row.map(String));
  const numeric = headers.map((_, column) => cells.length > 0 && cells.every((row) => /^[\d.,\s–×%msx/-]+$/.test(row[column] ?? '')));
  const widths = headers.map((header, column) => Math.max(header.length, 3, ...cells.map((row) => (row[column] ?? '').length)));
  const line = (row: readonly string[]): string =>
    `| ${row.map((cell, column) => (numeric[column] ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => (numeric[column] ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2))).join('|')}|`;
  return [line(headers), rule, ...cells.map(line)].join('\n');
}

/** One speed or correctness target and how this run fared against it. */
export interface TargetResult {
  /** e.g. `warm toolkit vs naive, 8 lanes`. */
  name: string;
  /** e.g. `≥ 20×`. */
  goal: string;
  /** e.g. `4.1×`. */
  measured: string;
  /** undefined when the part did not produce the numbers (then it reads "n/a"). */
  pass: boolean | undefined;
}

export function verdict(pass: boolean | undefined): string {
  if (pass === undefined) return 'n/a';
  return pass ? 'PASS' : 'MISS';
}

export function targetsTable(targets: readonly TargetResult[]): string {
  return table(
    ['target', 'goal', 'measured', 'verdict'],
    targets.map((target) => [target.name, target.goal, target.measured, verdict(target.pass)]),
  );
}

/** What every part returns: Markdown for the terminal and the docs, and its targets. */
export interface PartResult {
  /** e.g. `databases`. */
  id: string;
  /** Section heading, e.g. `1. Databases: N ready databases`. */
  title: string;
  /** Tables and explanations (Markdown). */
  markdown: string;
  targets: TargetResult[];
}

/** `[0, 1, …, n - 1]`. */
export function range(n: number): number[] {
  return Array.from({ length: n }, (_, index) => index);
}
