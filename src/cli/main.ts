import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { STATE_DIR_ENV } from '../env-vars.js';
import { formatLanesMessage, isLanesError } from '../errors.js';
import type { GlobalOptions } from './context.js';
import { red } from './format.js';

// Each command loads its modules when it runs (dynamic imports), so `--help` loads none of them and
// `status` does not load the PostgreSQL client, tsx (unless a TypeScript config is there), execa
// or Playwright.

/** The `e2e-lanes` command line. Resolves the exit code. */
export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command('e2e-lanes')
    .description('Look at and mend the lanes (ports, databases, servers) of Playwright runs.')
    .option('-c, --config <file>', 'Playwright config that uses withLanes (default: ./playwright.config.ts if present)')
    .option('--state-dir <dir>', `state folder (default: ${STATE_DIR_ENV} or ./test-results)`)
    .showHelpAfterError()
    .exitOverride();

  const context = async () => {
    const global = program.opts<GlobalOptions>();
    const { loadLanesOptions, stateOf } = await import('./context.js');
    const { options } = await loadLanesOptions(global.config);
    return { options, state: await stateOf(options, global) };
  };

  program
    .command('status')
    .description('table of lanes: run, project, ports, database, servers and health, owner alive or dead, age')
    .option('--json', 'print JSON for machines')
    .option('--all-machines', "include every machine's lanes from a shared server's registry")
    .action(async (opts: { json?: boolean; allMachines?: boolean }) => {
      const global = program.opts<GlobalOptions>();
      const [{ loadLanesOptions, stateFilesOf }, { collectStatus, formatStatus, otherStateFolders }] = await Promise.all([import('./context.js'), import('./status.js')]);
      const { options } = await loadLanesOptions(global.config);
      const state = stateFilesOf(options, global);
      const rows = await collectStatus(state, { allMachines: Boolean(opts.allMachines) });
      // No lanes here: the host-wide port claims know which other state folders have live lanes.
      const elsewhere = rows.length === 0 ? await otherStateFolders(state.stateDir, state.leaseMs) : undefined;
      // With --all-machines the server is asked anyway: also how many ready copies its templates have.
      const readyCopies = opts.allMachines ? await countReadyCopies(state) : undefined;
      if (opts.json) console.log(JSON.stringify({ stateDir: state.stateDir, lanes: rows, ...(elsewhere?.length ? { otherStateFolders: elsewhere } : {}), ...(readyCopies !== undefined ? { readyCopies } : {}) }, null, 2));
      else console.log(`${formatStatus(rows, { stateDir: state.stateDir, ...(elsewhere ? { elsewhere } : {}) })}${readyCopies !== undefined ? `\nReady copies of templates on the server: ${readyCopies}.` : ''}`);
    });

  program
    .command('gc')
    .description('reap lanes whose owner is dead or whose lease expired, and drop all but the newest templates')
    .option('--dry-run', 'only show what would be removed')
    .addOption(new Option('--keep-templates <n>', 'templates to keep').default(3).argParser(wholeNumber))
    .action(async (opts: { dryRun?: boolean; keepTemplates: number }) => {
      const [{ options, state }, { collectGarbage }] = await Promise.all([context(), import('./gc.js')]);
      const report = await collectGarbage(state, options, { dryRun: Boolean(opts.dryRun), keepTemplates: opts.keepTemplates });
      const verb = opts.dryRun ? 'would remove' : 'removed';
      console.log(`${verb} ${report.lanes.length} lane(s), ${report.killedPids.length} server process(es), ${report.databases.length} database(s), ${report.ports.length} port entr(ies), ${report.templates.length} template(s), ${report.readyCopies.length} ready cop(ies)`);
      for (const line of [...report.lanes, ...report.killed.map((why) => `${opts.dryRun ? 'would kill' : 'killed'} ${why}`), ...report.databases.map((name) => `database ${name}`), ...report.ports.map((ports) => `ports ${ports}`), ...report.templates.map((name) => `template ${name}`), ...report.readyCopies.map((name) => `ready copy ${name}`)]) {
        console.log(`  ${line}`);
      }
    });

  program
    .command('doctor')
    .description('check Postgres, template cloning, connections, embedded Postgres, browser, ports and state files')
    .action(async () => {
      const [{ options, state }, { diagnose, formatChecks }] = await Promise.all([context(), import('./doctor.js')]);
      const checks = await diagnose(state, options);
      console.log(formatChecks(checks));
      if (checks.some((check) => !check.ok)) exitCode = 1;
    });

  program
    .command('up')
    .description('bring a lane up from the Playwright config and keep it until Ctrl-C')
    .requiredOption('-p, --project <name>', 'the Playwright project whose lane to start')
    .option('--show-secrets', 'print DATABASE_URL with its password')
    .action(async (opts: { project: string; showSecrets?: boolean }) => {
      const global = program.opts<GlobalOptions>();
      const [{ loadLanesOptions }, { holdLane }] = await Promise.all([import('./context.js'), import('./up.js')]);
      const { options, projects } = await loadLanesOptions(global.config);
      await holdLane(options, opts.project, {
        showSecrets: Boolean(opts.showSecrets),
        ...(global.stateDir ? { stateDir: global.stateDir } : {}),
        ...(projects ? { projects } : {}),
      });
    });

  program
    .command('down')
    .description('tear lanes down: servers, databases and ports of one run, or of all runs')
    .option('--run <id...>', 'run id(s) to tear down')
    .option('--all', 'every run in the state folder, alive or not')
    .action(async (opts: { run?: string[]; all?: boolean }) => {
      if (!opts.run && !opts.all) throw new CommanderError(2, 'e2e-lanes.down', "error: say which lanes: --run <id> or --all (see 'e2e-lanes status')");
      const [{ options, state }, { tearDownRuns }] = await Promise.all([context(), import('../lanes/teardown/run-records.js')]);
      const report = await tearDownRuns(state, { ...(opts.run ? { runs: opts.run } : {}), ...(opts.all ? { all: true } : {}) }, options);
      console.log(`tore down ${report.runs.length} run(s): ${report.killedPids.length} server process(es), ${report.databases.length} database(s), ${report.ports} port entr(ies)`);
    });

  try {
    const commands = new Set(program.commands.map((command) => command.name()));
    // `status` is the default command when none is given (options such as --config may come first).
    const args = argv.some((arg) => commands.has(arg) || arg === 'help' || arg === '-h' || arg === '--help') ? argv : [...argv, 'status'];
    await program.parseAsync(args, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.exitCode === 0) return 0;
      if (error.code === 'e2e-lanes.down') console.error(error.message);
      return error.exitCode || 2;
    }
    if (isLanesError(error)) {
      console.error(red(`e2e-lanes: ${formatLanesMessage(error, { withCode: true })}`));
      return 1;
    }
    console.error(red(`e2e-lanes: ${(error as Error)?.stack ?? String(error)}`));
    return 1;
  }
}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number ≥ 0, got ${JSON.stringify(value)}`);
  return n;
}

/** The ready copies of every template of the allocator's prefix on the server (undefined without databases). */
async function countReadyCopies(state: { databaseLedger?: { allocator(): Promise<{ readyCopiesOf(hashes?: readonly string[]): Promise<string[]>; close(): Promise<void> }> } | undefined }): Promise<number | undefined> {
  if (!state.databaseLedger) return undefined;
  const databases = await state.databaseLedger.allocator();
  try {
    return (await databases.readyCopiesOf()).length;
  } finally {
    await databases.close();
  }
}
