/** Colours only when writing to a terminal (and NO_COLOR is unset). */
const useColor = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;

const paint = (code: number) => (text: string) => (useColor ? `\u001b[${code}m${text}\u001b[0m` : text);
export const green = paint(32);
export const red = paint(31);
export const yellow = paint(33);
export const dim = paint(2);
export const bold = paint(1);

const ANSI = /\u001b\[[0-9;]*m/g;

/** A plain text table with a header row, columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? '').replace(ANSI, '').length)));
  const line = (cells: string[]) =>
    cells.map((cell, column) => cell + ' '.repeat(Math.max(0, widths[column]! - cell.replace(ANSI, '').length))).join('  ').trimEnd();
  return [bold(line(header)), ...rows.map(line)].join('\n');
}

/** `3 min`, `2 h`, `5 s`: the age of an ISO timestamp. */
export function age(iso: string, now = Date.now()): string {
  return span(now - Date.parse(iso));
}

/** A length of time for people: `42 s`, `13 min`, `3 h`. */
export function span(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}
