import { ENV_VARS } from '../env-vars.js';

/**
 * Variables of the Playwright runner's environment that belong to e2e-lanes itself and never reach
 * a lane server (servers inherit the runner's environment, less these). Workers still get them.
 *
 * - `E2E_LANES_DATABASE_URL`: the admin URL of the PostgreSQL server (servers get their lane's `DATABASE_URL`).
 * - `E2E_LANES_CONTROL_URL`, `E2E_LANES_CONTROL_TOKEN`: the runner's lane service and its token;
 *   with them, anyone can ask the runner for any lane of the run, database URL included.
 * - `E2E_LANES_LANE_DATABASES`: where the run's lane databases live (the admin URL among them), for
 *   workers to name their lane's database before their spec files load.
 *
 * One list: mark a variable `private` in ENV_VARS when the toolkit puts something private into the runner's environment.
 */
export const PRIVATE_RUNNER_ENV: readonly string[] = ENV_VARS.filter((variable) => variable.private).map((variable) => variable.name);
