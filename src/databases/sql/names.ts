import { createHash } from 'node:crypto';
import { LanesError } from '../../errors.js';
import { validateProjectName, type LaneKey } from '../../state/ledger.js';

/** PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN − 1): every generated name fits. */
export const MAX_DATABASE_NAME_BYTES = 63;

/** The default prefix of every database the toolkit creates. */
export const DEFAULT_PREFIX = 'e2e';

const PREFIX_PATTERN = /^[a-z][a-z0-9]{0,15}$/;

/** The key a lane database name is derived from. */
export interface DatabaseNameKey {
  runId: string;
  project: string;
  worker?: number;
}

/**
 * Accepts a prefix of 1-16 characters: a lowercase letter, then lowercase letters or digits.
 * @throws {LanesError} `INVALID_OPTION` naming the option.
 */
export function validatePrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new LanesError('INVALID_OPTION', `Invalid database prefix ${JSON.stringify(prefix)}.`, {
      hint: "Option `prefix` takes 1-16 characters: a lowercase letter, then lowercase letters or digits (e.g. 'e2e').",
    });
  }
  return prefix;
}

/**
 * The database of one lane: `<prefix>_<short run id>_<slug of project>_<hash8>[_w<N>]`.
 * Only `[a-z0-9_]`, at most 63 bytes, and distinct for distinct (prefix, run, project, worker)
 * whatever the project name holds: the hash covers the full original key, the readable parts
 * are only there for people.
 */
export function laneDatabaseName(prefix: string, key: DatabaseNameKey): string {
  const hash = sha256Hex(JSON.stringify(['lane', prefix, key.runId, key.project, key.worker ?? null])).slice(0, 8);
  const worker = key.worker === undefined ? '' : `_w${key.worker}`;
  const run = shortRunId(key.runId);
  const fixed = `${prefix}_${run}__${hash}${worker}`.length;
  const slug = slugify(key.project, Math.max(1, MAX_DATABASE_NAME_BYTES - fixed));
  const name = `${prefix}_${run}_${slug}_${hash}${worker}`;
  if (name.length > MAX_DATABASE_NAME_BYTES) {
    // Only reachable with absurd worker indexes: keep the unique parts.
    return `${prefix}_${hash}${worker}`.slice(0, MAX_DATABASE_NAME_BYTES);
  }
  return name;
}

/**
 * The key of a lane of run `runId`, checked: a valid project name and, for per-worker lanes, a
 * whole worker index ≥ 0.
 * @throws {LanesError} `INVALID_PROJECT_NAME`, `INVALID_OPTION`.
 */
export function laneKey(runId: string, project: string, worker: number | undefined): LaneKey {
  const key: LaneKey = { runId, project: validateProjectName(project) };
  if (worker !== undefined) {
    if (!Number.isSafeInteger(worker) || worker < 0) {
      throw new LanesError('INVALID_OPTION', `Invalid worker index ${JSON.stringify(worker)}.`, { hint: 'Use the worker parallelIndex, a whole number ≥ 0.' });
    }
    key.worker = worker;
  }
  return key;
}

/** The database name belongs to `prefix` (databases of other prefixes are left alone). */
export function hasPrefix(prefix: string, databaseName: string): boolean {
  return databaseName.startsWith(`${prefix}_`);
}

/**
 * The name recorded for a lane is exactly the one an allocator of `prefix` derives for it: the
 * only lane databases it ever drops.
 */
export function isLaneDatabaseOf(prefix: string, entry: DatabaseNameKey & { databaseName: string }): boolean {
  const key: DatabaseNameKey = { runId: entry.runId, project: entry.project };
  if (entry.worker !== undefined) key.worker = entry.worker;
  return entry.databaseName === laneDatabaseName(prefix, key);
}

/** The template of a hash: `<prefix>_tpl_<hash12>`. */
export function templateDatabaseName(prefix: string, hash: string): string {
  return `${prefix}_tpl_${hash.slice(0, 12)}`;
}

/** The hash of a template name of `prefix`, or undefined when `name` is not one. */
export function templateHashOf(prefix: string, name: string): string | undefined {
  return isTemplateName(prefix, name) ? name.slice(prefix.length + 5) : undefined;
}

/** True when `name` has the form of a template of `prefix`. */
export function isTemplateName(prefix: string, name: string): boolean {
  return name.startsWith(`${prefix}_tpl_`) && /^[0-9a-f]{12}$/.test(name.slice(prefix.length + 5));
}

/** The temporary name a template is built under before it is renamed: `<template>_build_<random>`. */
export function buildDatabaseName(template: string, random: string): string {
  return `${template}_build_${random}`;
}

/** Lowercase `[a-z0-9]` of the run id, its last 8 characters (the random part of generated ids). */
export function shortRunId(runId: string): string {
  const clean = runId.toLowerCase().replace(/[^a-z0-9]/g, '');
  return clean.slice(-8) || 'run';
}

/**
 * A readable `[a-z0-9_]` form of any text, at most `max` characters: accents dropped, every
 * other character run turned into one `_`. Text with nothing readable becomes `p`.
 */
export function slugify(text: string, max: number): string {
  const slug = text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, max)
    .replace(/_+$/, '');
  return slug || 'p';
}

/** A signed 64-bit advisory lock key for `e2e-lanes:<name>`, as text for `::int8`. */
export function advisoryKey(name: string): string {
  return BigInt.asIntN(64, BigInt(`0x${sha256Hex(`e2e-lanes:${name}`).slice(0, 16)}`)).toString();
}

/** SHA-256 of `data` as lowercase hex. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
