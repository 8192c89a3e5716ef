/**
 * An allocator's first use of its server: join it, open where lanes are recorded, check that the
 * admin role may create lane roles (or say once that lanes connect as the admin role) and that the
 * server has room for the connections expected, then reuse or build the template.
 * Private to the databases module.
 * @internal
 */
import { progress } from '../log.js';
import { checkConnectionBudget } from './sql/catalog.js';
import { checkCanCreateRoles } from './sql/roles.js';
import type { ServerAccess } from './sql/server-access.js';
import { ensureTemplate } from './template/build.js';
import type { ResolvedDatabaseAllocatorOptions, TemplateInfo } from './types.js';

/**
 * Everything `DatabaseAllocator.prepare()` does before the ready copies are filled.
 * @param openRecords opens where lanes are recorded (it may move the maintenance connections to
 *   the registry's database, so it runs before the template's lock is taken there).
 * @param notices what was said already, once per allocator.
 */
export async function prepareServerAndTemplate(
  session: ServerAccess,
  options: ResolvedDatabaseAllocatorOptions,
  openRecords: () => Promise<unknown>,
  notices: { noLaneRoles: boolean },
): Promise<TemplateInfo> {
  const server = await session.server();
  await openRecords();
  if (options.laneRoles) await session.withAdmin((client) => checkCanCreateRoles(client, server.description));
  else if (!notices.noLaneRoles) {
    notices.noLaneRoles = true;
    progress('database.laneRoles: false: every lane connects as the admin role (its DATABASE_URL can reach every database of the server)');
  }
  const expected = options.expectedConnections;
  if (expected !== undefined) await session.withAdmin((client) => checkConnectionBudget(client, expected));
  const { prefix, migrations, seed, hashInputs, rebuild, connectTimeoutMs, runId, seedTimeoutMs, migrationTimeoutMs, templateWaitTimeoutMs, laneRoles } = options;
  const adminUrl = await session.maintenanceUrl();
  return ensureTemplate({ adminUrl, prefix, migrations, seed, hashInputs, rebuild, connectTimeoutMs, runId, seedTimeoutMs, migrationTimeoutMs, templateWaitTimeoutMs, laneRoles });
}
