import createDebug from 'debug';
import { LanesError } from '../errors.js';
import { dependencyDepths } from './graph.js';
import { checkDefinition } from './options.js';
import { startServer } from './start-server.js';
import type { ServerContext, ServerDefinition, StartedServer, StartedServers, StartServerOptions } from './types.js';

const log = createDebug('e2e-lanes:servers');

/**
 * Starts a lane's servers: each one as soon as every server in its `dependsOn` is healthy,
 * independent ones in parallel. Fills `ctx.urls` as servers become healthy.
 *
 * Every definition is checked before anything starts (`INVALID_OPTION` for bad options, unknown
 * dependencies and cycles). If one server fails, the ones still starting are aborted, the ones
 * already started are stopped, and the first failure is rethrown.
 */
export async function startServers(defs: readonly ServerDefinition[], ctx: ServerContext, options: StartServerOptions): Promise<StartedServers> {
  if (!Array.isArray(defs)) {
    throw new LanesError('INVALID_OPTION', `startServers: the server definitions of project "${ctx?.project}" must be an array.`);
  }
  for (const def of defs) checkDefinition(def, ctx);
  const depths = dependencyDepths(defs, ctx.project);
  options.signal?.throwIfAborted();

  const failure = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, failure.signal]) : failure.signal;
  const started = new Map<string, StartedServer>();
  const starting = new Map<string, Promise<StartedServer>>();
  let firstError: { error: unknown } | undefined;

  const startOne = async (def: ServerDefinition): Promise<StartedServer> => {
    await Promise.all((def.dependsOn ?? []).map((dep) => starting.get(dep)));
    signal.throwIfAborted();
    try {
      const server = await startServer(def, ctx, { ...options, signal });
      started.set(def.name, server);
      if (server.url !== undefined) ctx.urls[def.name] = server.url;
      return server;
    } catch (error) {
      if (!firstError) {
        firstError = { error };
        failure.abort(error);
      }
      throw error;
    }
  };
  // By increasing depth, so every dependency's promise exists before its dependents ask for it.
  for (const def of [...defs].sort((a, b) => (depths.get(a.name) ?? 0) - (depths.get(b.name) ?? 0))) {
    starting.set(def.name, startOne(def));
  }
  const results = await Promise.allSettled(starting.values());

  const stopAll = stopper(started, depths);
  const failed = firstError ?? results.find((result) => result.status === 'rejected');
  if (failed) {
    log('project %s: a server failed to start; stopping %d started server(s)', ctx.project, started.size);
    for (const name of started.keys()) delete ctx.urls[name];
    await stopAll().catch((error: unknown) => log('project %s: stopping after failure failed: %O', ctx.project, error));
    throw 'error' in failed ? failed.error : failed.reason;
  }
  const servers = defs.map((def) => started.get(def.name)).filter((server) => server !== undefined);
  return Object.assign(servers, { stopAll, [Symbol.asyncDispose]: stopAll });
}

/** `stopAll()`: the deepest servers first, each depth in parallel; keeps going past errors. @internal */
function stopper(started: ReadonlyMap<string, StartedServer>, depths: ReadonlyMap<string, number>): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () =>
    (stopping ??= (async () => {
      const servers = [...started.values()];
      const levels = [...new Set(servers.map((server) => depths.get(server.name) ?? 0))].sort((a, b) => b - a);
      const errors: unknown[] = [];
      for (const level of levels) {
        const results = await Promise.allSettled(servers.filter((server) => (depths.get(server.name) ?? 0) === level).map((server) => server.stop()));
        for (const result of results) if (result.status === 'rejected') errors.push(result.reason);
      }
      if (errors.length > 0) throw errors[0];
    })());
}
