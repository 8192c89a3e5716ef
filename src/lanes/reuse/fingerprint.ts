/**
 * The fingerprint of a lane: what a warm lane must still match to be reused by a later run (the
 * config, the servers' definitions, the port names, the environment each server starts with), and
 * why a recorded one does not match.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import type { ServerDefinition } from '../../servers/index.js';
import { loopbackUrl } from '../../servers/options.js';
import type { LanesOptions } from '../options/lane-options.js';
import type { LaneFingerprint } from '../records/lane-ledger.js';
import { changedVariables, listNames, serverEnvironment } from './environment.js';

/**
 * What a warm lane must still match to be reused: the config, the servers' definitions
 * (command, cwd, env, the rest) and port names, each as a short hash, and the environment each
 * server is started with, a short digest per variable (see serverEnvironment).
 */
export function laneFingerprint(options: LanesOptions, configKey: string, ctx: { project: string; ports: Record<string, number> }): LaneFingerprint {
  const servers: LaneFingerprint['servers'] = {};
  const urls: Record<string, string> = {};
  for (const server of options.servers ?? []) {
    const port = ctx.ports[server.port ?? server.name];
    if (port !== undefined) urls[server.name] = loopbackUrl(port, options.host);
  }
  for (const server of options.servers ?? []) {
    const { command, cwd, env, ...rest } = server;
    const configured = evaluateEnv(env, { project: ctx.project, ports: ctx.ports, urls: { ...urls }, databaseUrl: 'postgresql://lane-database' });
    servers[server.name] = {
      command: digest(command),
      cwd: digest(resolve(cwd ?? process.cwd())),
      env: digest(configured),
      rest: digest(rest),
      environment: serverEnvironment(server, { ports: ctx.ports, database: options.database !== false }, configured as Record<string, unknown> | undefined),
    };
  }
  return { config: configKey, servers, ports: digest(Object.keys(ctx.ports).sort()) };
}

const FIELD_NAMES: Record<Exclude<keyof LaneFingerprint['servers'][string], 'environment'>, string> = { command: 'command', cwd: 'cwd', env: 'env', rest: 'options' };

/** Why a warm lane recorded with `recorded` cannot serve a run that wants `current`, or undefined. */
export function fingerprintChange(recorded: LaneFingerprint | undefined, current: LaneFingerprint): string | undefined {
  if (!recorded) return 'it was recorded without a fingerprint';
  if (recorded.ports !== current.ports) return 'its port names changed';
  const before = Object.keys(recorded.servers);
  const after = Object.keys(current.servers);
  const added = after.filter((name) => !before.includes(name));
  const removed = before.filter((name) => !after.includes(name));
  if (added.length > 0) return `a server was added (${added.map((name) => JSON.stringify(name)).join(', ')})`;
  if (removed.length > 0) return `a server was removed (${removed.map((name) => JSON.stringify(name)).join(', ')})`;
  for (const name of after) {
    for (const field of Object.keys(FIELD_NAMES) as Array<keyof typeof FIELD_NAMES>) {
      if (recorded.servers[name]![field] !== current.servers[name]![field]) return `the ${name}'s ${FIELD_NAMES[field]} changed`;
    }
    const before = recorded.servers[name]!.environment;
    if (!before) return `its ${name} was recorded without its environment`;
    const changed = changedVariables(before, current.servers[name]!.environment ?? {});
    if (changed.length > 0) return `the ${name}'s environment changed (${listNames(changed)})`;
  }
  return undefined;
}

function evaluateEnv(env: ServerDefinition['env'], ctx: Parameters<Extract<ServerDefinition['env'], (...args: never[]) => unknown>>[0]): unknown {
  try {
    const value = typeof env === 'function' ? env(ctx) : env;
    return value && Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)));
  } catch (error) {
    return { error: String(error) };
  }
}

function digest(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value ?? null)).digest('hex').slice(0, 12);
}
