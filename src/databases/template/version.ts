import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** The version of e2e-lanes, from its package.json (part of every template hash). @internal */
export function toolkitVersion(): string {
  if (cached === undefined) {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    cached = typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  }
  return cached;
}
