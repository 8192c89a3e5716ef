import { randomBytes } from 'node:crypto';
import { escapeIdentifier } from 'pg';
import { DEFAULT_PORT_RANGE, isPortFree } from '../ports/index.js';
import type { LanesOptions } from '../lanes/options/lane-options.js';
import { messageOf } from '../errors.js';
import { connectClient, describeTarget, ensurePostgres, formatVersion, resolveAdminUrl, resolveBinaries } from '../postgres/index.js';
import { playwrightChromium, systemChromium } from '../playwright/browser.js';
import { green, red, yellow } from './format.js';
import type { CliState } from './context.js';

type State = CliState;

/** One check of `doctor`. */
export interface Check {
  name: string;
  ok: boolean;
  /** A warning does not fail the doctor. */
  warning?: boolean;
  detail: string;
}

/** Runs every check; the doctor fails if any check is not ok. */
export async function diagnose(state: State, options: LanesOptions): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (name: string, ok: boolean, detail: string, warning = false) => checks.push({ name, ok, detail, ...(warning ? { warning } : {}) });

  for (const file of [state.ports.file, state.lanes, ...(state.databases ? [state.databases.file] : [])]) {
    try {
      await file.read();
      add('state file', true, file.path);
    } catch (error) {
      add('state file', false, `${file.path}: ${messageOf(error)}`);
    }
  }

  try {
    const binaries = await resolveBinaries();
    add('embedded PostgreSQL', true, `binaries at ${binaries.postgres}`);
  } catch (error) {
    const given = resolveAdminUrl(options.database ? options.database.adminUrl : undefined);
    add('embedded PostgreSQL', Boolean(given), given ? 'not installed (not needed: a server URL is given)' : messageOf(error), Boolean(given));
  }

  if (options.database !== false) await checkPostgres(state, options, add);

  const browser = playwrightChromium() ?? systemChromium();
  add('browser', Boolean(browser), browser ?? 'no Chromium: run `npx playwright install chromium` or `apt-get install -y chromium`');

  const [first, last] = options.portRange ?? DEFAULT_PORT_RANGE;
  let free = 0;
  for (let port = first; port <= last; port++) if (await isPortFree(port)) free++;
  const held = (await state.ports.list()).reduce((sum, entry) => sum + Object.keys(entry.ports).length, 0);
  add('ports', free > 0, `${free} of ${last - first + 1} ports in ${first}-${last} are free (${held} held by lanes)`);
  return checks;
}

async function checkPostgres(state: State, options: LanesOptions, add: (name: string, ok: boolean, detail: string, warning?: boolean) => void): Promise<void> {
  const database = options.database || {};
  let server;
  try {
    server = await ensurePostgres({
      stateDir: state.stateDir,
      runId: 'e2e-lanes-doctor',
      ...(database.adminUrl !== undefined ? { adminUrl: database.adminUrl } : {}),
      ...(database.embedded !== undefined ? { embedded: database.embedded } : {}),
    });
  } catch (error) {
    add('PostgreSQL reachable', false, messageOf(error));
    return;
  }
  try {
    add('PostgreSQL reachable', true, `${describeTarget(server.adminUrl)} (${server.embedded ? 'embedded' : 'given URL'}), version ${formatVersion(server.version)}`);
    const registry = state.databases?.registryKind();
    if (registry) {
      add('lane registry', true, registry === 'postgres' ? 'in the server (e2e_lanes.lane_databases): machines sharing it see each other\'s lanes' : 'state files on this host');
    }
    add('DROP DATABASE … WITH (FORCE)', server.version >= 130000, server.version >= 130000 ? 'supported' : 'needs PostgreSQL 13 or newer (a slower fallback is used)', server.version < 130000);
    const client = await connectClient(server.adminUrl, { timeoutMs: 10_000 });
    try {
      const suffix = randomBytes(4).toString('hex');
      const source = `${database.prefix ?? 'e2e'}_doctor_${suffix}`;
      const clone = `${source}_clone`;
      try {
        await client.query(`CREATE DATABASE ${escapeIdentifier(source)}`);
        await client.query(`CREATE DATABASE ${escapeIdentifier(clone)} TEMPLATE ${escapeIdentifier(source)}`);
        add('CREATE DATABASE … TEMPLATE', true, 'a test clone was created and dropped');
      } catch (error) {
        add('CREATE DATABASE … TEMPLATE', false, `${messageOf(error)} (the role needs CREATEDB)`);
      } finally {
        for (const name of [clone, source]) await client.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)}`).catch(() => undefined);
      }
      const { rows } = await client.query<{ max: string; used: string }>(
        "SELECT current_setting('max_connections') AS max, (SELECT count(*) FROM pg_stat_activity)::text AS used",
      );
      const max = Number(rows[0]?.max);
      const used = Number(rows[0]?.used);
      add('max_connections', max - used > 20, `${used} of ${max} connections in use`, max - used <= 20);
      // Templates and their ready copies (what lanes are cloned from, and what a lane boot or swap reset takes).
      const prefix = database.prefix ?? 'e2e';
      const caches = await client.query<{ templates: number; copies: number }>(
        `SELECT count(*) FILTER (WHERE datname ~ ('^' || $1 || '_tpl_[0-9a-f]{12}$'))::int AS templates,
                count(*) FILTER (WHERE datname ~ ('^' || $1 || '_pool_[0-9a-f]{12}_[0-9a-f]{8}$'))::int AS copies FROM pg_database`,
        [prefix],
      );
      const { templates, copies } = caches.rows[0] ?? { templates: 0, copies: 0 };
      add('templates and ready copies', true, `${templates} template(s) of prefix ${prefix}, ${copies} ready cop${copies === 1 ? 'y' : 'ies'} (taken by lane boots and swap resets; \`gc\` drops those of templates that are gone)`);
    } finally {
      await client.end().catch(() => undefined);
    }
  } finally {
    await server.release();
  }
}

/** The doctor's report, one line per check. */
export function formatChecks(checks: Check[]): string {
  return checks
    .map((check) => `${check.ok ? green('✓') : check.warning ? yellow('!') : red('✗')} ${check.name}: ${check.detail}`)
    .join('\n');
}
