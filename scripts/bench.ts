/**
 * `npm run bench`: proves the speed claims of e2e-lanes against the naive way, measured side by
 * side in one run (medians of repetitions, ratios, PASS/MISS per target; a MISS never fails).
 *
 *   npm run bench [-- --quick] [--only databases,floor,ports,suite,teardown,resets,migration,reuse,vitest] [--reps N] [--write-docs]
 *
 * One file per part under scripts/bench/; docs/performance.md is written by --write-docs only.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { runCloneFloor } from './bench/clone-floor.ts';
import { BenchContext, PARTS, ROOT, type BenchOptions, type PartId } from './bench/context.ts';
import { runDatabases } from './bench/databases.ts';
import { fmtMs, targetsTable, type PartResult } from './bench/measure.ts';
import { runPorts } from './bench/ports.ts';
import { commandLine, DOCS_FILE, machineFacts, renderDocs, writeDocs } from './bench/report.ts';
import { runSuite } from './bench/suite.ts';
import { runTeardown } from './bench/teardown.ts';
import { runResets } from './bench/resets.ts';
import { runMigration } from './bench/migration.ts';
import { runReuse } from './bench/reuse.ts';
import { runVitest } from './bench/vitest.ts';

const RUNNERS: Record<PartId, (ctx: BenchContext) => Promise<PartResult>> = {
  databases: runDatabases,
  floor: runCloneFloor,
  ports: runPorts,
  suite: runSuite,
  teardown: runTeardown,
  resets: runResets,
  migration: runMigration,
  reuse: runReuse,
  vitest: runVitest,
};

const USAGE = `Usage: npm run bench -- [options]

  --quick          smoke run: 1 repetition and smaller sizes (2-3 minutes)
  --only <parts>   comma-separated parts to run: ${PARTS.join(', ')} (default: all)
  --reps <n>       repetitions of every measurement (default 3, or 1 with --quick)
  --write-docs     rewrite docs/performance.md from this run (needs every part)
  -h, --help       this text`;

function parseOptions(argv: string[]): BenchOptions {
  const options = {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    reps: { type: 'string' },
    'write-docs': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  } as const;
  let values: ReturnType<typeof parseArgs<{ args: string[]; options: typeof options }>>['values'];
  try {
    ({ values } = parseArgs({ args: argv, options }));
  } catch (error) {
    usageError((error as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const only = values.only === undefined ? [...PARTS] : values.only.split(',').map((part) => part.trim());
  const unknown = only.filter((part) => !(PARTS as readonly string[]).includes(part));
  if (unknown.length > 0) usageError(`unknown part(s) ${unknown.join(', ')} in --only; use ${PARTS.join(', ')}`);
  const reps = values.reps === undefined ? undefined : Number(values.reps);
  if (reps !== undefined && !(Number.isInteger(reps) && reps >= 1)) usageError(`--reps takes a whole number ≥ 1, got ${JSON.stringify(values.reps)}`);
  if (values['write-docs'] && values.only !== undefined) usageError('--write-docs regenerates the whole of docs/performance.md: drop --only');
  return { quick: values.quick, reps, only: new Set(only as PartId[]), writeDocs: values['write-docs'] };
}

function usageError(message: string): never {
  console.error(`bench: ${message}\n\n${USAGE}`);
  process.exit(2);
}

const argv = process.argv.slice(2);
const options = parseOptions(argv);
process.chdir(ROOT);
process.env.E2E_LANES_QUIET = '1'; // the toolkit's progress lines would interleave with the tables
const startedAt = new Date();
const load = loadavg();
const ctx = await BenchContext.create(options);
// `on`, not `once`: execa's exit hook re-raises a signal that no other listener handles, which would end the bench mid-cleanup.
let interrupted = false;
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(signal, () => {
    if (interrupted) return void console.error(`bench: ${signal} again, still cleaning up…`);
    interrupted = true;
    console.error(`\nbench: ${signal}, cleaning up…`);
    void ctx.close().finally(() => process.exit(code));
  });
}

const results: PartResult[] = [];
const failures: string[] = [];
try {
  console.log(`e2e-lanes bench (${options.quick ? 'quick' : 'full'}), id ${ctx.id}, parts: ${[...options.only].join(', ')}`);
  for (const part of PARTS.filter((id) => options.only.has(id))) {
    console.log(`\n… ${part}`);
    const started = performance.now();
    try {
      const result = await RUNNERS[part](ctx);
      results.push(result);
      console.log(`\n## ${result.title}\n\n${result.markdown}\n\n(${part}: ${fmtMs(performance.now() - started)})`);
    } catch (error) {
      failures.push(part);
      console.error(`\nbench: part ${part} failed: ${(error as Error).stack ?? String(error)}`);
    }
  }
  const targets = results.flatMap((result) => result.targets);
  if (targets.length > 0) console.log(`\n## Targets\n\n${targetsTable(targets)}`);
  const durationMs = Date.now() - startedAt.getTime();
  console.log(
    `\nbench finished in ${fmtMs(durationMs)} (${fmtMs(ctx.waitedMs)} of it waiting for other processes to leave the CPU)` +
      `${failures.length > 0 ? `; FAILED parts: ${failures.join(', ')}` : ''}`,
  );
  if (options.writeDocs) {
    if (failures.length > 0) {
      console.error(`bench: not writing ${DOCS_FILE}: parts failed.`);
    } else {
      await writeDocs(renderDocs(await machineFacts(ctx, commandLine(argv), startedAt, load), results, durationMs, options.quick));
      console.log(`wrote ${DOCS_FILE}`);
    }
  }
} finally {
  await ctx.close();
}
process.exitCode = failures.length > 0 ? 1 : 0;
