/**
 * The environment a lane's server is started with, as a warm lane's fingerprint records it: one
 * short keyed digest per variable, so a later run can tell which variables changed (their names,
 * never their values) and not reuse servers that still see the old values.
 */
import { createHmac } from 'node:crypto';
import { resolve } from 'node:path';
import { readEnvFiles } from '../../env-files.js';
import { ENV_PREFIX } from '../../env-vars.js';
import { PRIVATE_RUNNER_ENV, type ServerDefinition } from '../../servers/index.js';
import { envName } from '../../servers/options.js';
import { currentHost } from '../../state/index.js';
import { currentBootId } from '../../state/identity.js';

/**
 * Variables left out of the fingerprint because they change from one run to the next by nature,
 * without changing what a server does:
 * - the shell's bookkeeping: `_` (the last command), `OLDPWD`, `PWD` (the folder is in the fingerprint
 *   as the server's `cwd`), `SHLVL`, `COLUMNS`, `LINES`;
 * - the terminal or login session the run was started from: a new tab, window, pane or SSH login
 *   (`TERM_SESSION_ID`, `SSH_CONNECTION`, `SSH_AUTH_SOCK`, `GPG_TTY`, `DISPLAY`, …);
 * - how the run was launched: npm and npx (`npm_*`, `INIT_CWD`), an editor's terminal (`VSCODE_*`),
 *   systemd (`INVOCATION_ID`, `JOURNAL_STREAM`);
 * - Playwright's own settings, which its runner, reporters, UI mode and editor extension read, not the
 *   app: `PLAYWRIGHT_*` (a report's output file, often new for every run), `PW_*`, `PWDEBUG`;
 * - the toolkit's own (`E2E_LANES_*`): run-scoped marks (run id, owner pid, the lane service's
 *   address and token) and settings whose effects the reuse judges itself (database, ports,
 *   state folder), or that do not reach a server's behaviour (`E2E_LANES_DEBUG`, `E2E_LANES_KEEP`).
 */
export const RUN_SCOPED_ENV: readonly string[] = [
  '_',
  'OLDPWD',
  'PWD',
  'SHLVL',
  'COLUMNS',
  'LINES',
  'TERM_SESSION_ID',
  'ITERM_SESSION_ID',
  'WINDOWID',
  'TMUX_PANE',
  'KITTY_WINDOW_ID',
  'KITTY_PID',
  'WEZTERM_PANE',
  'ALACRITTY_WINDOW_ID',
  'WT_SESSION',
  'SECURITYSESSIONID',
  'XDG_SESSION_ID',
  'SSH_CLIENT',
  'SSH_CONNECTION',
  'SSH_TTY',
  'SSH_AUTH_SOCK',
  'GPG_TTY',
  'DISPLAY',
  'XAUTHORITY',
  'STARSHIP_SESSION_KEY',
  'Apple_PubSub_Socket_Render',
  'INVOCATION_ID',
  'JOURNAL_STREAM',
  'INIT_CWD',
  'PWDEBUG',
];

/** Prefixes of the variables left out (see {@link RUN_SCOPED_ENV}). */
export const RUN_SCOPED_ENV_PREFIXES: readonly string[] = [ENV_PREFIX, 'npm_', 'VSCODE_', 'PLAYWRIGHT_', 'PW_'];

/** Variables the lane sets for its database whatever the runner's environment holds (see pointEnvAt). */
const LANE_DATABASE_ENV = ['DATABASE_URL', 'PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGPASSWORD', 'PGHOSTADDR', 'PGSERVICE', 'PGSERVICEFILE'];

/** True for a variable of {@link RUN_SCOPED_ENV} or one of its prefixes. */
export function isRunScopedEnv(name: string): boolean {
  return RUN_SCOPED_ENV.includes(name) || RUN_SCOPED_ENV_PREFIXES.some((prefix) => name.startsWith(prefix));
}

/**
 * Per variable, a digest of the value `server` is started with: the inherited environment (less the
 * runner's private variables, the run-scoped ones and those the lane sets itself: `PORT`,
 * `<NAME>_PORT`, `<NAME>_URL`, and with a database `DATABASE_URL` and the `PG*` parts), then its
 * `envFile`s, then its `env` (already evaluated by the caller).
 *
 * The digests are HMACs keyed with this machine's boot id (its host name where there is none), so
 * a state file read elsewhere (a CI artifact) does not let anyone test guesses of a secret's value;
 * a warm lane never outlives the boot anyway. An `envFile` that cannot be read counts as a value
 * of its own: its lane boots afresh, and the boot says why.
 */
export function serverEnvironment(
  server: Pick<ServerDefinition, 'name' | 'cwd' | 'envFile'>,
  lane: { ports: Record<string, number>; database: boolean },
  configured: Record<string, unknown> | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const laneSet = new Set<string>(['PORT', ...Object.keys(lane.ports).flatMap((name) => [`${envName(name)}_PORT`, `${envName(name)}_URL`])]);
  if (lane.database) for (const name of LANE_DATABASE_ENV) laneSet.add(name);
  const values = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || PRIVATE_RUNNER_ENV.includes(name) || isRunScopedEnv(name) || laneSet.has(name)) continue;
    values.set(name, value);
  }
  try {
    for (const file of readEnvFiles(server.envFile, resolve(server.cwd ?? process.cwd()), `server "${server.name}" envFile`)) {
      for (const [name, value] of Object.entries(file.values)) if (!laneSet.has(name)) values.set(name, value);
    }
  } catch (error) {
    values.set(`(envFile ${String(server.envFile)})`, `unreadable: ${String(error)}`);
  }
  for (const [name, value] of Object.entries(configured ?? {})) values.set(name, JSON.stringify(value));
  const key = currentBootId() ?? currentHost();
  const digests: Record<string, string> = {};
  for (const name of [...values.keys()].sort()) digests[name] = createHmac('sha256', key).update(`${name}\0${values.get(name)}`).digest('hex').slice(0, 12);
  return digests;
}

/** Names of the variables added, removed or changed from `before` to `after`, sorted. */
export function changedVariables(before: Record<string, string>, after: Record<string, string>): string[] {
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...names].filter((name) => before[name] !== after[name]).sort();
}

/** `A_FLAG, B_FLAG and 3 more`, for a line that must stay short. */
export function listNames(names: readonly string[], max = 8): string {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}
