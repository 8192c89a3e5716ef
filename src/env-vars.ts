/**
 * Every environment variable of e2e-lanes, in one table: its name, what it means, who sets it and
 * who reads it. The code uses the constants below, never the names as text; the table of
 * docs/configuration.md is checked against {@link ENV_VARS} (test/docs/env-vars.test.ts).
 *
 * This module imports nothing, so every layer may use it.
 */

/** The prefix of every variable of e2e-lanes: `.env` files of the runner give only these. */
export const ENV_PREFIX = 'E2E_LANES_';

// Settings of the user.
export const DATABASE_URL_ENV = 'E2E_LANES_DATABASE_URL';
export const STATE_DIR_ENV = 'E2E_LANES_STATE_DIR';
export const PORT_RANGE_ENV = 'E2E_LANES_PORT_RANGE';
export const RUN_ID_ENV = 'E2E_LANES_RUN_ID';
export const SHARD_ENV = 'E2E_LANES_SHARD';
export const REGISTRY_ENV = 'E2E_LANES_REGISTRY';
export const LEASE_MS_ENV = 'E2E_LANES_LEASE_MS';
export const KEEP_ENV = 'E2E_LANES_KEEP';
export const REBUILD_ENV = 'E2E_LANES_REBUILD';
export const EMBEDDED_DIR_ENV = 'E2E_LANES_EMBEDDED_DIR';
export const CHROMIUM_ENV = 'E2E_LANES_CHROMIUM';
export const DEBUG_ENV = 'E2E_LANES_DEBUG';
export const QUIET_ENV = 'E2E_LANES_QUIET';
export const SEED_TIMEOUT_ENV = 'E2E_LANES_SEED_TIMEOUT_MS';
export const RESET_LOCK_TIMEOUT_ENV = 'E2E_LANES_RESET_LOCK_TIMEOUT_MS';
export const MIGRATION_TIMEOUT_ENV = 'E2E_LANES_MIGRATION_TIMEOUT_MS';
export const TEMPLATE_WAIT_TIMEOUT_ENV = 'E2E_LANES_TEMPLATE_WAIT_TIMEOUT_MS';
export const REGISTRY_DATABASE_ENV = 'E2E_LANES_REGISTRY_DATABASE';
export const PROGRESS_INTERVAL_ENV = 'E2E_LANES_PROGRESS_INTERVAL_MS';
export const HOST_STATE_DIR_ENV = 'E2E_LANES_HOST_STATE_DIR';
export const HOST_ENV = 'E2E_LANES_HOST';

// Set by the runner for its workers and lane servers.
export const OWNER_PID_ENV = 'E2E_LANES_OWNER_PID';
export const SERVER_MARK_ENV = 'E2E_LANES_SERVER';
export const LANE_DATABASES_ENV = 'E2E_LANES_LANE_DATABASES';

// Between the toolkit's own processes.
export const CONTROL_URL_ENV = 'E2E_LANES_CONTROL_URL';
export const CONTROL_TOKEN_ENV = 'E2E_LANES_CONTROL_TOKEN';
export const ISOLATION_ENV = 'E2E_LANES_ISOLATION';
export const PROJECT_ISOLATION_ENV = 'E2E_LANES_PROJECT_ISOLATION';
export const REBUILT_TEMPLATES_ENV = 'E2E_LANES_REBUILT_TEMPLATES';
export const WATCHDOG_ENV = 'E2E_LANES_WATCHDOG';
/** The secrets a server's detached log writer redacts (JSON array); set on that process alone. */
export const LOG_WRITER_SECRETS_ENV = 'E2E_LANES_LOG_SECRETS';
export const OWNER_IDENTITY_ENV = 'E2E_LANES_OWNER_IDENTITY';

/**
 * Who sets a variable:
 * - `user`: a setting (in the shell, CI or an `envFile`); e2e-lanes may export it too (the run id);
 * - `runner`: e2e-lanes sets it for its workers or lane servers; users may read it, never set it;
 * - `internal`: e2e-lanes sets and reads it between its own processes; not documented for users.
 */
export type EnvVarSetter = 'user' | 'runner' | 'internal';

export interface EnvVar {
  name: string;
  /** What it holds, in a sentence. */
  meaning: string;
  setBy: EnvVarSetter;
  /** Which processes (and parts of the code) read it. */
  readBy: string;
  /**
   * Kept from lane servers, which inherit the runner's environment less these (PRIVATE_RUNNER_ENV):
   * it holds the admin URL, or lets anyone ask the runner for any lane of the run.
   */
  private?: true;
}

export const ENV_VARS: readonly EnvVar[] = [
  { name: DATABASE_URL_ENV, setBy: 'user', readBy: 'runner and CLI (postgres/url.ts); workers through LANE_DATABASES; never lane servers', meaning: 'Admin URL of the PostgreSQL server to use, else the embedded one (`DATABASE_URL` is never used for this).', private: true },
  { name: STATE_DIR_ENV, setBy: 'user', readBy: 'every process that opens the state folder (state/paths.ts)', meaning: 'The state folder (default `./test-results`).' },
  { name: PORT_RANGE_ENV, setBy: 'user', readBy: 'the port allocator (ports/options.ts)', meaning: 'The port range, `FIRST-LAST`.' },
  { name: RUN_ID_ENV, setBy: 'user', readBy: 'runner, workers, CLI (state/owner.ts); the reaper in lane servers\' environment (lanes/reaping/process-marks.ts)', meaning: 'The run id; unset, derived on CI or random, and exported by the runner to its workers and servers.' },
  { name: SHARD_ENV, setBy: 'user', readBy: 'the runner deriving the run id (state/ci.ts), the registry (databases/records/decisions.ts)', meaning: 'The shard, `2/4`, when `--shard` is not on the command line.' },
  { name: REGISTRY_ENV, setBy: 'user', readBy: 'database options (databases/options.ts)', meaning: '`auto`, `postgres` or `file`: the `registry` option.' },
  { name: LEASE_MS_ENV, setBy: 'user', readBy: 'every allocator and the embedded server (state/paths.ts)', meaning: 'Lease length in milliseconds.' },
  { name: KEEP_ENV, setBy: 'user', readBy: 'lane options (lanes/options/lane-options.ts); the reaper in the environment of kept servers, which the runner marks with it (lanes/reaping/process-marks.ts)', meaning: '`1` keeps lanes up after the run, `on-failure` those in which a test failed.' },
  { name: REBUILD_ENV, setBy: 'user', readBy: 'database options (databases/options.ts)', meaning: '`1` rebuilds the template.' },
  { name: EMBEDDED_DIR_ENV, setBy: 'user', readBy: 'embedded server options (postgres/options.ts)', meaning: 'Data directory of the embedded server.' },
  { name: CHROMIUM_ENV, setBy: 'user', readBy: 'withLanes and doctor (playwright/browser.ts)', meaning: 'A Chromium executable to use when Playwright\'s own is not installed.' },
  { name: DEBUG_ENV, setBy: 'user', readBy: 'the lane manager (lanes/lane-manager.ts)', meaning: '`1` prints the servers\' output on the console.' },
  { name: QUIET_ENV, setBy: 'user', readBy: 'progress lines (log.ts)', meaning: '`1` silences the progress lines.' },
  { name: SEED_TIMEOUT_ENV, setBy: 'user', readBy: 'database options (databases/options.ts)', meaning: 'Deadline of the seed in ms: the `seedTimeoutMs` option.' },
  { name: RESET_LOCK_TIMEOUT_ENV, setBy: 'user', readBy: 'database options (databases/options.ts)', meaning: 'How long a `truncate` reset waits for a table\'s lock, in ms: the `resetLockTimeoutMs` option.' },
  { name: MIGRATION_TIMEOUT_ENV, setBy: 'user', readBy: 'database options (databases/options.ts)', meaning: 'Deadline of each migration in ms: the `migrationTimeoutMs` option.' },
  { name: TEMPLATE_WAIT_TIMEOUT_ENV, setBy: 'user', readBy: 'database options (databases/options.ts)', meaning: 'How long to wait for another builder of the template, in ms: the `templateWaitTimeoutMs` option.' },
  { name: REGISTRY_DATABASE_ENV, setBy: 'user', readBy: 'database options (databases/options.ts)', meaning: 'The database of the server\'s registry: the `registryDatabase` option.' },
  { name: PROGRESS_INTERVAL_ENV, setBy: 'user', readBy: 'template build steps (databases/template/deadline.ts)', meaning: 'Interval of the progress lines of a long template build step, in ms (default 10000).' },
  { name: HOST_STATE_DIR_ENV, setBy: 'user', readBy: 'the port allocator (ports/host-claims.ts)', meaning: 'Host-wide folder of the port claims (default `<tmp>/e2e-lanes`).' },
  { name: HOST_ENV, setBy: 'user', readBy: 'owners of state entries (state/owner.ts)', meaning: 'The host name recorded in owners (default: the machine\'s).' },
  { name: OWNER_PID_ENV, setBy: 'runner', readBy: 'workers and CLI (state/owner.ts); the reaper in lane servers\' environment (lanes/reaping/process-marks.ts)', meaning: 'The long-lived process that owns the run (the Playwright runner).' },
  { name: SERVER_MARK_ENV, setBy: 'runner', readBy: 'the reaper and the teardown, in lane servers\' environment (lanes/reaping/process-marks.ts)', meaning: 'Set on every lane server: its name, so what a dead run left can be found.' },
  { name: LANE_DATABASES_ENV, setBy: 'runner', readBy: 'workers, before their spec files load (playwright/worker-lane.ts); never lane servers', meaning: 'Where the run\'s lane databases live (the server\'s URL, without credentials with lane roles; the run\'s lane role key; prefix, run id), set by global setup for the workers.', private: true },
  { name: CONTROL_URL_ENV, setBy: 'internal', readBy: 'workers (playwright/control-client.ts); never lane servers', meaning: 'URL of the runner\'s lane service.', private: true },
  { name: CONTROL_TOKEN_ENV, setBy: 'internal', readBy: 'workers (playwright/control-client.ts), each its own (playwright/worker-tokens.ts); never the runner\'s environment, never lane servers', meaning: 'A worker\'s own token of the runner\'s lane service, set when the runner forks it: it opens that worker\'s project\'s lanes only.', private: true },
  { name: ISOLATION_ENV, setBy: 'internal', readBy: 'the `lane` fixture (playwright/fixtures.ts)', meaning: 'The `isolation` option of withLanes, from the config evaluated in the runner to the workers.' },
  { name: PROJECT_ISOLATION_ENV, setBy: 'internal', readBy: 'workers, before their spec files load (playwright/worker-lane.ts), and the `lane` fixture', meaning: 'The lanes of each project as global setup resolved them (`project` or `worker`, JSON), e.g. a lane per worker for `laneReset: \'test\'` on several workers.' },
  { name: REBUILT_TEMPLATES_ENV, setBy: 'internal', readBy: 'the template build (databases/template/build.ts)', meaning: 'Templates this process (and its children) rebuilt already, so `rebuild` rebuilds each once per run.' },
  { name: OWNER_IDENTITY_ENV, setBy: 'internal', readBy: 'the reaper, in lane servers\' environment (lanes/reaping/process-marks.ts)', meaning: 'The PID namespace, start time and boot of the run\'s owner (`<ns>:<start>:<boot id>`): its pid is judged only where they match.' },
  { name: WATCHDOG_ENV, setBy: 'internal', readBy: 'a warm run\'s watchdog (lanes/reuse/watchdog.ts); `down` by its mark (lanes/teardown/run-records.ts)', meaning: 'The settings of a warm run\'s watchdog (JSON), and its mark.' },
  { name: LOG_WRITER_SECRETS_ENV, setBy: 'internal', readBy: 'the log writer of a kept or warm lane\'s server (servers/log-writer.ts); never lane servers', meaning: 'The secrets its log writer redacts from a server\'s output (JSON).', private: true },
];
