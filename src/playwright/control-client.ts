import { CONTROL_TOKEN_ENV, CONTROL_URL_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';
import type { DatabaseReset } from '../databases/index.js';
import type { Lane } from '../lanes/lane-manager.js';
import type { LaneServerStatus } from '../lanes/server-status.js';
import type { LaneRequest } from './control-server.js';
import { showCode } from './show-code.js';

/**
 * Where the lane service is and the token to ask it with: a Playwright worker's come from its
 * environment; a Vitest worker is given them by the global setup.
 */
export interface ControlEndpoint {
  url: string;
  token: string;
}

/** Asks the runner for the lane of a project (booting it on first use). */
export async function requestLane(request: LaneRequest, endpoint?: ControlEndpoint): Promise<Lane> {
  const body = await ask<{ lane?: Lane }>('/lanes', request, endpoint);
  if (!body.lane) throw new LanesError('CONFIG_INVALID', 'The lane service answered without a lane.');
  return body.lane;
}

/** Asks the runner how the servers of a booted lane are doing (undefined: the lane is not booted). */
export async function requestServerStatus(request: LaneRequest): Promise<LaneServerStatus[] | undefined> {
  return (await ask<{ servers?: LaneServerStatus[] }>('/lanes/status', request)).servers;
}

/** Asks the runner to put the lane's data back to the template (the test asking is `request.user`). */
export async function requestReset(request: LaneRequest, endpoint?: ControlEndpoint): Promise<DatabaseReset> {
  const body = await ask<{ reset?: DatabaseReset }>('/lanes/reset', request, endpoint);
  if (!body.reset) throw new LanesError('CONFIG_INVALID', 'The lane service answered without a reset.');
  return body.reset;
}

/** Tells the runner a test begins using its lane (resetting its data first with `reset`) or ends. */
export async function reportTest(request: LaneRequest & { phase: 'begin' | 'end'; user: NonNullable<LaneRequest['user']> }): Promise<DatabaseReset | undefined> {
  return (await ask<{ reset?: DatabaseReset }>('/lanes/test', request)).reset;
}

async function ask<T>(path: string, request: LaneRequest, endpoint?: ControlEndpoint): Promise<T> {
  const url = endpoint?.url ?? process.env[CONTROL_URL_ENV];
  const token = endpoint?.token ?? process.env[CONTROL_TOKEN_ENV];
  if (!url || !token) {
    throw new LanesError('CONFIG_INVALID', 'The `lane` fixture found no lane service: the e2e-lanes global setup did not run.', {
      hint: "Wrap your config with `withLanes(config, options)` from 'e2e-lanes/playwright' in playwright.config.ts.",
    });
  }
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(request),
  });
  const body = (await response.json()) as T & { error?: unknown };
  if (response.ok && !body.error) return body;
  throw showCode(body.error ? LanesError.fromJSON(body.error) : new LanesError('CONFIG_INVALID', `lane service answered ${response.status}`));
}
