import { LanesError, type LanesErrorCode } from '../errors.js';
import type { Lane } from '../lanes/lane-manager.js';
import { CONTROL_TOKEN_ENV, CONTROL_URL_ENV, type LaneRequest } from './control-server.js';

/** Asks the runner for the lane of a project (booting it on first use). */
export async function requestLane(request: LaneRequest): Promise<Lane> {
  const url = process.env[CONTROL_URL_ENV];
  const token = process.env[CONTROL_TOKEN_ENV];
  if (!url || !token) {
    throw new LanesError('CONFIG_INVALID', 'The `lane` fixture found no lane service: the e2e-lanes global setup did not run.', {
      hint: "Wrap your config with `withLanes(config, options)` from 'e2e-lanes/playwright' in playwright.config.ts.",
    });
  }
  const response = await fetch(`${url}/lanes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(request),
  });
  const body = (await response.json()) as { lane?: Lane; error?: { code: string; message: string; hint?: string } };
  if (response.ok && body.lane) return body.lane;
  const error = body.error ?? { code: 'CONFIG_INVALID', message: `lane service answered ${response.status}` };
  throw new LanesError(error.code as LanesErrorCode, error.message, error.hint ? { hint: error.hint } : {});
}
