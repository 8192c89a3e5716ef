/**
 * Run ids from CI: the vendor is detected by `ci-info`, the id is built from the vendor's own run
 * and job variables plus the Playwright shard, so every shard of every run on every machine gets
 * its own id, and every evaluation of the config in one job computes the same one.
 */
import { createHash } from 'node:crypto';
import ci from 'ci-info';
import { SHARD_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';

/** The longest run id: database names keep only part of it, the registry and ledgers keep all of it. */
export const MAX_RUN_ID_LENGTH = 64;

/** One shard of a sharded Playwright run (`--shard=2/4` is `{ current: 2, total: 4 }`). */
export interface Shard {
  current: number;
  total: number;
}

/** Options of {@link ciRunId}, for tests and unusual setups. */
export interface CiRunIdOptions {
  /**
   * The environment to read the vendor's variables from.
   * @default process.env
   */
  env?: NodeJS.ProcessEnv;
  /**
   * The command line `--shard` is read from.
   * @default process.argv
   */
  argv?: readonly string[];
  /**
   * The CI vendor as `ci-info` names it (`'GITHUB_ACTIONS'`, `'GITLAB'`, …), or null for none.
   * @default what `ci-info` detected in the process environment
   */
  vendor?: string | null;
}

interface VendorIds {
  /** Short tag that starts the run id. */
  tag: string;
  /** The values that make a run of a job unique, most general first; undefined when they are missing. */
  parts(env: NodeJS.ProcessEnv): string[] | undefined;
}

/**
 * The variables of each supported vendor. Run-level ids (shared by the shards of a run) come with a
 * job-level id or attempt wherever the vendor has one, so a retried job never meets the leftovers
 * of the attempt before it.
 */
const VENDORS: Record<string, VendorIds> = {
  // GITHUB_RUN_ID is shared by every job and shard of a run; the attempt changes on re-runs.
  GITHUB_ACTIONS: { tag: 'gh', parts: (env) => (env.GITHUB_RUN_ID ? [env.GITHUB_JOB, env.GITHUB_RUN_ID, env.GITHUB_RUN_ATTEMPT || '1'].filter(isSet) : undefined) },
  // CI_JOB_ID is unique per job on the instance, retries and `parallel:` jobs included.
  GITLAB: { tag: 'gl', parts: (env) => (env.CI_PIPELINE_ID || env.CI_JOB_ID ? [env.CI_PIPELINE_ID, env.CI_JOB_ID].filter(isSet) : undefined) },
  // Parallel containers of one CircleCI job share the build number; the node index tells them apart.
  CIRCLE: {
    tag: 'cci',
    parts: (env) =>
      env.CIRCLE_WORKFLOW_ID || env.CIRCLE_BUILD_NUM
        ? [env.CIRCLE_WORKFLOW_ID, env.CIRCLE_BUILD_NUM, Number(env.CIRCLE_NODE_TOTAL) > 1 ? `n${env.CIRCLE_NODE_INDEX ?? ''}` : undefined].filter(isSet)
        : undefined,
  },
  BUILDKITE: { tag: 'bk', parts: (env) => (env.BUILDKITE_BUILD_ID ? [env.BUILDKITE_BUILD_ID, env.BUILDKITE_JOB_ID].filter(isSet) : undefined) },
  AZURE_PIPELINES: { tag: 'az', parts: (env) => (env.BUILD_BUILDID ? [env.BUILD_BUILDID, env.SYSTEM_JOBATTEMPT, env.SYSTEM_JOBID].filter(isSet) : undefined) },
  JENKINS: { tag: 'jk', parts: (env) => (env.BUILD_TAG ? [env.BUILD_TAG, env.NODE_NAME, env.EXECUTOR_NUMBER].filter(isSet) : undefined) },
  BITBUCKET: { tag: 'bb', parts: (env) => (env.BITBUCKET_BUILD_NUMBER ? [env.BITBUCKET_BUILD_NUMBER, env.BITBUCKET_STEP_UUID].filter(isSet) : undefined) },
  TRAVIS: { tag: 'tr', parts: (env) => (env.TRAVIS_BUILD_ID ? [env.TRAVIS_BUILD_ID, env.TRAVIS_JOB_ID].filter(isSet) : undefined) },
  SEMAPHORE: { tag: 'sem', parts: (env) => (env.SEMAPHORE_JOB_ID ? [env.SEMAPHORE_WORKFLOW_ID, env.SEMAPHORE_JOB_ID].filter(isSet) : undefined) },
  CODEBUILD: { tag: 'cb', parts: (env) => (env.CODEBUILD_BUILD_ID ? [env.CODEBUILD_BUILD_ID] : undefined) },
  DRONE: { tag: 'drone', parts: (env) => (env.DRONE_BUILD_NUMBER ? [env.DRONE_REPO, env.DRONE_BUILD_NUMBER, env.DRONE_STAGE_NUMBER].filter(isSet) : undefined) },
};

/** The vendors whose run variables {@link ciRunId} knows (as `ci-info` names them). */
export const CI_VENDORS_WITH_RUN_IDS: readonly string[] = Object.keys(VENDORS);

/**
 * The run id of this CI job, or undefined outside CI (or on a vendor whose variables are not known):
 * `<vendor tag>-<vendor ids>[-s<current>of<total>]`, e.g. `gh-e2e-12345678901-1-s2of4` for shard
 * 2/4 of attempt 1 of a GitHub Actions run, or `gl-987654-123456789` on GitLab. No random part:
 * every evaluation of the config in one job agrees. Only `[A-Za-z0-9._-]`, at most 64 characters;
 * a value that had to be changed to fit adds a hash of the original, so ids stay distinct.
 * @throws {LanesError} `INVALID_OPTION` when `E2E_LANES_SHARD` is not of the form `2/4`.
 */
export function ciRunId(options: CiRunIdOptions = {}): string | undefined {
  const env = options.env ?? process.env;
  const vendor = options.vendor === undefined ? ci.id : options.vendor;
  if (!vendor) return undefined;
  const ids = VENDORS[vendor]?.parts(env);
  if (!ids || ids.length === 0) return undefined;
  const shard = resolveShard(options.argv ?? process.argv, env);
  return composeRunId(VENDORS[vendor]!.tag, ids, shard);
}

/**
 * Joins a tag, parts and shard into a valid run id. Characters outside `[A-Za-z0-9._-]` become `_`;
 * when anything had to change, or the id is longer than 64 characters, the middle is cut and a
 * 12-character hash of the original parts is added, keeping the shard at the end.
 */
export function composeRunId(tag: string, parts: readonly string[], shard?: Shard): string {
  const tail = shard ? `-s${shard.current}of${shard.total}` : '';
  const raw = [tag, ...parts].join('-');
  const clean = raw.replace(/[^A-Za-z0-9._-]/g, '_');
  if (clean === raw && clean.length + tail.length <= MAX_RUN_ID_LENGTH) return `${clean}${tail}`;
  const hash = createHash('sha256').update(JSON.stringify([tag, ...parts])).digest('hex').slice(0, 12);
  const room = MAX_RUN_ID_LENGTH - tail.length - hash.length - 1;
  return `${clean.slice(0, room).replace(/[-_.]+$/, '')}-${hash}${tail}`;
}

/**
 * The shard this Playwright invocation runs: `--shard=2/4` or `--shard 2/4` on the command line
 * (what the runner sees when it evaluates the config), else `E2E_LANES_SHARD`. Undefined when
 * neither is set; a malformed `--shard` is left for Playwright to report.
 * @throws {LanesError} `INVALID_OPTION` when `E2E_LANES_SHARD` is set but malformed.
 */
export function resolveShard(argv: readonly string[] = process.argv, env: NodeJS.ProcessEnv = process.env): Shard | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    const value = arg.startsWith('--shard=') ? arg.slice('--shard='.length) : arg === '--shard' ? argv[i + 1] : undefined;
    if (value !== undefined) return parseShard(value);
  }
  const fromEnv = env[SHARD_ENV]?.trim();
  if (!fromEnv) return undefined;
  const shard = parseShard(fromEnv);
  if (!shard) {
    throw new LanesError('INVALID_OPTION', `Invalid ${SHARD_ENV} ${JSON.stringify(fromEnv)}.`, {
      hint: `Set ${SHARD_ENV} to <current>/<total> with 1 ≤ current ≤ total, as for \`playwright test --shard=2/4\`.`,
    });
  }
  return shard;
}

/** `'2/4'` → `{ current: 2, total: 4 }`; undefined unless 1 ≤ current ≤ total. */
export function parseShard(text: string): Shard | undefined {
  const match = /^\s*(\d{1,6})\s*\/\s*(\d{1,6})\s*$/.exec(text);
  if (!match) return undefined;
  const current = Number(match[1]);
  const total = Number(match[2]);
  return current >= 1 && current <= total ? { current, total } : undefined;
}

/** `'2/4'`, as stored in the registry. */
export function formatShard(shard: Shard): string {
  return `${shard.current}/${shard.total}`;
}

function isSet(value: string | undefined): value is string {
  return value !== undefined && value !== '';
}
