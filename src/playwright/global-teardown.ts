import { progress } from '../log.js';
import { keepMode } from '../lanes/options/lane-options.js';
import { redactUrl } from '../redact.js';
import { configBridge } from './config-bridge.js';
import { showCode } from './show-code.js';

/**
 * The toolkit's global teardown (added by `withLanes`, after the user's own): stops every server of
 * the run, drops its databases, releases its ports and the Postgres server. With `keep`
 * (`E2E_LANES_KEEP=1`), the lanes stay up (with `'on-failure'` those in which a test failed) and how
 * to reach and remove them is printed. A failure is rethrown with its code in front of its message.
 */
export default async function globalTeardown(): Promise<void> {
  const active = configBridge().active;
  if (!active) return;
  configBridge().active = undefined;
  const mode = keepMode(configBridge().options ?? {});
  const started = Date.now();
  const times = active.manager.describeTimes();
  if (times) progress(times);
  try {
    await active.dispose();
  } catch (error) {
    // Playwright prints the message: the code goes in front of it, as for global setup's errors.
    throw showCode(error);
  }
  const warm = active.manager.warmLanes();
  if (warm) {
    const minutes = Math.round((Date.parse(warm.until) - Date.now()) / 60_000);
    progress(`${warm.lanes.length} lane(s) of run ${active.manager.runId} kept warm for the next run, stopped after ${minutes} min unused (by watchdog pid ${warm.watchdogPid}); see them with \`npx e2e-lanes status\`, stop them now with \`npx e2e-lanes down\``);
    return;
  }
  const lanes = active.manager.keptLanes();
  if (lanes.length === 0) {
    progress(`lanes of run ${active.manager.runId} torn down in ${Date.now() - started} ms${mode === 'on-failure' ? ' (no test failed: none kept)' : ''}`);
    return;
  }
  for (const lane of lanes) {
    const urls = Object.entries(lane.urls).map(([name, url]) => `${name} ${url}`).join(', ');
    const who = `${JSON.stringify(lane.project)}${lane.worker !== undefined ? ` (worker ${lane.worker})` : ''}`;
    progress(`kept lane of project ${who}${mode === 'on-failure' ? ' (a test failed in it)' : ''}: ${urls}${lane.databaseUrl ? `, DATABASE_URL ${redactUrl(lane.databaseUrl)}` : ''}`);
  }
  progress(`remove them with: npx e2e-lanes down --run ${active.manager.runId}`);
}
