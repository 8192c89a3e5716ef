import { progress } from '../log.js';
import { keepLanes } from '../lanes/options.js';
import { registry } from './registry.js';

/**
 * The toolkit's global teardown (added by `withLanes`, after the user's own): stops every server of
 * the run, drops its databases, releases its ports and the Postgres server. With `keep`
 * (`E2E_LANES_KEEP=1`), the lanes stay up and how to reach and remove them is printed.
 */
export default async function globalTeardown(): Promise<void> {
  const active = registry().active;
  if (!active) return;
  registry().active = undefined;
  const keep = keepLanes(registry().options ?? {});
  const lanes = keep ? await active.manager.lanes() : [];
  const started = Date.now();
  await active.dispose();
  if (!keep) {
    progress(`lanes of run ${active.manager.runId} torn down in ${Date.now() - started} ms`);
    return;
  }
  for (const lane of lanes) {
    const urls = Object.entries(lane.urls).map(([name, url]) => `${name} ${url}`).join(', ');
    progress(`kept lane of project ${JSON.stringify(lane.project)}: ${urls}${lane.databaseName ? `, database ${lane.databaseName}` : ''}`);
  }
  progress(`remove them with: npx e2e-lanes down --run ${active.manager.runId}`);
}
