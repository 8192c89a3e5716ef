/**
 * Ready copies of a template: databases cloned from it ahead of need, so that a lane (at boot, or
 * when its data is reset) gets a fresh database by a rename (about a millisecond) instead of a
 * clone. A copy is named `<prefix>_pool_<template hash>_<random>`; nobody ever connects to one; a
 * copy is claimed by renaming it, which either wins or fails, so no copy is ever handed out twice,
 * across processes and machines sharing the server. A copy belongs to its template: it is dropped
 * when its template is gone. Private to the databases module.
 * @internal
 */
import { randomBytes } from 'node:crypto';
import { escapeIdentifier, escapeLiteral, type Client, type DatabaseError } from 'pg';
import { debugLogger } from '../../log.js';
import { cloneDatabase, databasesStartingWith, dropDatabase } from '../sql/catalog.js';
import type { DatabaseMark } from '../sql/marks.js';
import type { CloneStrategy } from '../types.js';

const debug = debugLogger('databases');

/** The template a copy is made from. */
export interface PoolTemplate {
  /** e.g. `e2e_tpl_3f9a0c1b2d4e`. */
  name: string;
  /** 12 hex characters. */
  hash: string;
}

/** `<prefix>_pool_<hash>_`: the start of every copy name of a template. */
export function poolNamePrefix(prefix: string, hash: string): string {
  return `${prefix}_pool_${hash.slice(0, 12)}_`;
}

/** A new copy name of a template: `<prefix>_pool_<hash12>_<random8>` (at most 43 bytes). */
export function poolDatabaseName(prefix: string, hash: string, random = randomBytes(4).toString('hex')): string {
  return `${poolNamePrefix(prefix, hash)}${random}`;
}

/** The template hash of a copy name of `prefix`, or undefined when `name` is not one. */
export function poolTemplateHash(prefix: string, name: string): string | undefined {
  const match = new RegExp(`^${prefix}_pool_([0-9a-f]{12})_[0-9a-f]{8}$`).exec(name);
  return match?.[1];
}

/**
 * Names of the ready copies of a template on the server that the connected role owns (only the
 * owner may rename a database, so copies another role made are not this role's to take) and that
 * are finished (a copy is opened to connections last), oldest first.
 */
export async function readyCopies(client: Client, prefix: string, hash: string): Promise<string[]> {
  const start = poolNamePrefix(prefix, hash);
  const { rows } = await client.query<{ name: string }>(
    'SELECT datname AS name FROM pg_database WHERE left(datname, $2) = $1 AND datallowconn AND datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user) ORDER BY oid',
    [start, start.length],
  );
  return rows.map((row) => row.name).filter((name) => poolTemplateHash(prefix, name) === hash);
}

/**
 * Renames a ready copy of the template to `name` and resolves which copy it was; undefined when
 * there is none left (then the caller clones). A copy another process renamed first is skipped.
 * `name` must not exist. `then`: statements run in the same transaction as the rename (e.g. the
 * grant to a lane role), so the copy shows under its new name with them done.
 */
export async function takeReadyCopy(client: Client, prefix: string, hash: string, name: string, then?: string): Promise<string | undefined> {
  for (const copy of await readyCopies(client, prefix, hash)) {
    try {
      await client.query(`ALTER DATABASE ${escapeIdentifier(copy)} RENAME TO ${escapeIdentifier(name)}${then ? `;\n${then}` : ''}`);
      debug('took ready copy %s as %s', copy, name);
      return copy;
    } catch (error) {
      // Taken by another process meanwhile (3D000), being looked at by someone (55006), or not ours
      // to rename after all (42501): try the next.
      const code = (error as Partial<DatabaseError>).code;
      if (code === '3D000' || code === '55006' || code === '42501') continue;
      throw error;
    }
  }
  return undefined;
}

/**
 * Clones the template until it has `target` ready copies (counting those other processes made),
 * one after another on this connection. Resolves the names it created. `mark` is the toolkit's mark
 * every copy carries (kind `pool`).
 */
export async function fillPool(
  client: Client,
  options: { prefix: string; template: PoolTemplate; target: number; strategy: CloneStrategy; serverVersion: number; mark: DatabaseMark; signal?: AbortSignal },
): Promise<string[]> {
  const made: string[] = [];
  for (let round = 0; round < options.target; round++) {
    if (options.signal?.aborted) break;
    if ((await readyCopies(client, options.prefix, options.template.hash)).length >= options.target) break;
    // Cloned under its final name: a database shows in pg_database only once CREATE DATABASE committed.
    const name = poolDatabaseName(options.prefix, options.template.hash);
    // Nobody connects to a ready copy: closed to PUBLIC, its lane role gets it when it is renamed in.
    // (False: dropped by another process before it was finished.)
    if (await cloneDatabase(client, name, options.template.name, options.strategy, options.serverVersion, { then: `COMMENT ON DATABASE ${escapeIdentifier(name)} IS ${escapeLiteral(JSON.stringify(options.mark))}` })) made.push(name);
  }
  if (made.length > 0) debug('made %d ready copies of %s', made.length, options.template.name);
  return made;
}

/**
 * Every ready copy of `prefix` on the server (whoever owns it), with its template's hash, oldest
 * first; `finished` is false for a copy not opened yet (being made, or left so by a process that
 * died making it).
 */
export async function listPoolCopies(client: Client, prefix: string): Promise<Array<{ name: string; hash: string; finished: boolean }>> {
  return (await databasesStartingWith(client, `${prefix}_pool_`)).flatMap((row) => {
    const hash = poolTemplateHash(prefix, row.name);
    return hash === undefined ? [] : [{ name: row.name, hash, finished: row.allowConnections }];
  });
}

/**
 * Drops the ready copies of `prefix` whose template is not among `templateHashes` (gone or
 * superseded), beyond `keep` copies of a live template, and those never finished (a process that
 * is still making one sees it gone and makes another). Resolves the names dropped.
 */
export async function dropStaleCopies(client: Client, prefix: string, templateHashes: ReadonlySet<string>, keep = Number.POSITIVE_INFINITY): Promise<string[]> {
  const dropped: string[] = [];
  const perTemplate = new Map<string, number>();
  for (const { name, hash, finished } of await listPoolCopies(client, prefix)) {
    const count = (perTemplate.get(hash) ?? 0) + (finished ? 1 : 0);
    perTemplate.set(hash, count);
    if (finished && templateHashes.has(hash) && count <= keep) continue;
    if (await dropDatabase(client, name)) dropped.push(name);
  }
  if (dropped.length > 0) debug('dropped %d ready copies: %o', dropped.length, dropped);
  return dropped;
}
