/**
 * Part 2: the physical floor of a lane database (a raw `CREATE DATABASE … TEMPLATE` on this
 * server) against the toolkit's per-lane `allocateDatabaseForProject`, and where the difference goes.
 */
import pg from 'pg';
import { DatabaseAllocator } from '../../src/index.ts';
import { DEMO, type BenchContext } from './context.ts';
import { fmtMs, fmtRange, fmtRatio, median, range, Samples, table, timed, type PartResult } from './measure.ts';
import { locate } from './report.ts';
import { SPAN_CONNECT, SPAN_END, SPAN_FSYNC, summarize, Tracer } from './trace.ts';

const TARGET = 2;

export async function runCloneFloor(ctx: BenchContext): Promise<PartResult> {
  const count = Math.max(5, 4 * ctx.reps());
  const warm = await ctx.warmTemplate();
  const allocator = new DatabaseAllocator({ ...DEMO, prefix: warm.prefix, stateDir: await ctx.dir('floor'), runId: ctx.fresh('r') });
  const cloneSql = (name: string): string => ctx.cloneSql(name, warm.name, allocator.options.cloneStrategy);
  const samples = new Samples();
  const traces: Array<Map<string, number>> = [];
  const totals: number[] = [];
  const atOnce: AtOnce[] = [];
  try {
    await allocator.prepare();
    const variants: Array<[string, (i: number) => Promise<number>]> = [
      ['floor', async (i) => (await raw(ctx, `${ctx.id}f${i}`, (client, name) => client.query(cloneSql(name)), ctx.admin)).ms],
      ['own-connection', async (i) => (await raw(ctx, `${ctx.id}g${i}`, (client, name) => client.query(cloneSql(name)))).ms],
      [
        'toolkit',
        async (i) => {
          const { ms } = await timed(() => allocator.allocateDatabaseForProject(`lane-${i}`));
          await allocator.releaseDatabaseForProject(`lane-${i}`);
          return ms;
        },
      ],
    ];
    await variants[2]![1](-1); // warm-up: first allocation of the allocator (connection caches, state file)
    await ctx.quiet();
    for (const i of range(count)) {
      for (let v = 0; v < variants.length; v++) {
        const [name, run] = variants[(v + i) % variants.length]!;
        samples.add(name, await run(i));
      }
    }

    await ctx.quiet();
    const tracer = Tracer.start();
    try {
      for (const i of range(count)) {
        tracer.take();
        const { ms } = await timed(() => allocator.allocateDatabaseForProject(`traced-${i}`));
        traces.push(tracer.take());
        totals.push(ms);
        await allocator.releaseDatabaseForProject(`traced-${i}`);
      }
      for (const rep of range(ctx.reps())) atOnce.push(await lanesAtOnce(ctx, warm.prefix, tracer, rep));
    } finally {
      tracer.stop();
    }
  } finally {
    await allocator.releaseRun().catch(() => undefined);
    await allocator.close();
  }

  const floor = samples.median('floor');
  const toolkitMs = samples.median('toolkit');
  const ratio = toolkitMs / floor;
  const row = (label: string, key: string): string[] => [label, fmtMs(samples.median(key)), fmtRange(samples.get(key)), fmtRatio(samples.median(key) / floor)];
  const breakdown = summarize(traces, totals);
  const idleMs = median(atOnce.map((a) => a.idleMs));
  const markdown = [
    table(
      ['per lane', 'median', 'min–max', '÷ floor'],
      [
        row('raw `CREATE DATABASE … TEMPLATE …` on an open connection (the floor)', 'floor'),
        row('the same with its own connection (connect, clone, disconnect)', 'own-connection'),
        row('toolkit `allocateDatabaseForProject` (template cached)', 'toolkit'),
      ],
    ),
    '',
    `${count} samples of each, interleaved (the order rotates every sample), each database dropped (not timed) before the next sample.`,
    `The clone strategy is the allocator's default (${allocator.options.cloneStrategy}); the floor uses the same.`,
    '',
    `**Where one allocation's milliseconds go** (mean of ${count} traced allocations, one at a time, median ${fmtMs(median(totals))};`,
    'measured by hooking `pg`, `proper-lockfile` and `fs.fsync` from the bench, src/ untouched):',
    '',
    table(['step', 'ms per lane', 'share'], breakdown.rows),
    '',
    `**${AT_ONCE} lanes at once** (one allocator, \`Promise.all\` of ${AT_ONCE} \`allocateDatabaseForProject\`, as a run whose lanes boot`,
    `together; medians of ${atOnce.length}): the ledger lock is held for each lane in turn, clone included; "free, not taken" is`,
    'the time between one holder\'s release and the next holder\'s acquire, when waiters were still sleeping between polls.',
    '',
    table(
      ['lanes', 'wall', 'ledger lock held', 'lock free, not taken', 'share of wall'],
      [[AT_ONCE, fmtMs(median(atOnce.map((a) => a.wallMs))), fmtMs(median(atOnce.map((a) => a.heldMs))), fmtMs(idleMs), `${((idleMs / median(atOnce.map((a) => a.wallMs))) * 100).toFixed(0)} %`]],
    ),
    '',
    ...proposals(breakdown.byLabel, ratio <= TARGET, idleMs),
  ].join('\n');

  return {
    id: 'floor',
    title: '2. Clone floor: raw CREATE DATABASE … TEMPLATE vs the toolkit per lane',
    markdown,
    targets: [{ name: 'toolkit per-lane database time vs clone floor', goal: `≤ ${TARGET}× floor`, measured: `${fmtRatio(ratio)} (${fmtMs(toolkitMs)} vs ${fmtMs(floor)})`, pass: ratio <= TARGET }],
  };
}

const AT_ONCE = 8;

interface AtOnce {
  wallMs: number;
  heldMs: number;
  idleMs: number;
}

/** {@link AT_ONCE} lanes allocated at once by a fresh, prepared allocator, with the ledger lock's holds traced. */
async function lanesAtOnce(ctx: BenchContext, prefix: string, tracer: Tracer, rep: number): Promise<AtOnce> {
  const allocator = new DatabaseAllocator({ ...DEMO, prefix, stateDir: await ctx.dir('floor-at-once'), runId: ctx.fresh('r') });
  try {
    await allocator.prepare();
    await ctx.quiet();
    tracer.takeHolds();
    const { ms } = await timed(() => Promise.all(range(AT_ONCE).map((i) => allocator.allocateDatabaseForProject(`at-once-${rep}-${i}`))));
    const { heldMs, idleMs } = tracer.takeHolds();
    return { wallMs: ms, heldMs, idleMs };
  } finally {
    await allocator.releaseRun();
    await allocator.close();
  }
}

/** Times `clone` of database `name` (on `client`, or on a connection of its own), then drops it untimed. */
async function raw(ctx: BenchContext, name: string, clone: (client: pg.Client, name: string) => Promise<unknown>, client?: pg.Client): Promise<{ ms: number }> {
  try {
    return await timed(async () => {
      const own = client ?? new pg.Client({ connectionString: ctx.postgres.adminUrl });
      if (!client) await own.connect();
      try {
        await clone(own, name);
      } finally {
        if (!client) await own.end();
      }
    });
  } finally {
    await ctx.dropDatabasesStartingWith(name);
  }
}

interface Proposal {
  /** Which spans it removes or shrinks. */
  spans: (label: string) => boolean;
  /** Where: file and a line of it to find. */
  file: string;
  needle: string;
  fix: string;
}

const PROPOSALS: Proposal[] = [
  {
    spans: (label) => label === SPAN_CONNECT || label === SPAN_END || label === 'sql: SHOW server_version_num',
    file: 'src/databases/database-allocator.ts',
    needle: 'async #withAdmin<T>(',
    fix:
      'keep one admin connection per allocator instead of connecting and disconnecting on every call: `#withAdmin` opens a ' +
      'client (TCP + SCRAM + a new backend), asks `SHOW server_version_num` and ends it each time. Hold a lazily connected ' +
      '`pg.Client` (or a `pg.Pool` with `max: 1`, `idleTimeoutMillis: 1000`, `allowExitOnIdle: true`) on the allocator, take ' +
      'the version from `PostgresHandle.version` (already known from `ensurePostgres`), end it in `close()`; the ledger lock ' +
      'already serialises its use.',
  },
  {
    spans: (label) => label.startsWith('sql: SELECT pg_terminate_backend'),
    file: 'src/databases/admin.ts',
    needle: 'await terminateSessions(client, template);',
    fix:
      'in `cloneDatabase`, end sessions on the template only after `CREATE DATABASE` failed with 55006 (object_in_use), not ' +
      'before every attempt: a sealed template has `ALLOW_CONNECTIONS false`, so on the first try there is nobody to end and ' +
      'the `pg_stat_activity` scan is a wasted round trip per lane.',
  },
  {
    spans: (label) => label.startsWith('sql: SELECT datname AS name'),
    file: 'src/databases/database-allocator.ts',
    needle: 'if (await findDatabase(client, databaseName)) return;',
    fix:
      'drop the lookup before the clone: run `CREATE DATABASE` directly and treat 42P04 (duplicate_database) as "already ' +
      'there"; the idempotent re-allocation is the rare path and keeps working.',
  },
  {
    spans: (label) => label === SPAN_FSYNC,
    file: 'src/state/state-file.ts',
    needle: 'writeFileAtomic(this.path',
    fix:
      'write state files with `{ fsync: false }`: temp file + rename stays atomic against any process crash; only a power loss ' +
      'could lose the last update, after which every owner is dead and the next run reaps anyway. Saves an fsync on every ' +
      'allocation, release and heartbeat.',
  },
];

/** The fixes for the spans the trace found, biggest saving first, each with its file and line. */
function proposals(byLabel: Map<string, number>, met: boolean, idleMs: number): string[] {
  const found = PROPOSALS.map((proposal) => ({
    proposal,
    ms: [...byLabel].filter(([label]) => proposal.spans(label)).reduce((sum, [, ms]) => sum + ms, 0),
  }))
    .filter(({ ms }) => ms >= 0.3)
    .sort((a, b) => b.ms - a.ms);
  const lines = [met ? '**Further savings** (the target is met):' : `**Proposed fixes** (the ≤ ${TARGET}× target is missed), biggest saving first:`, ''];
  for (const { proposal, ms } of found) lines.push(`- \`${locate(proposal.file, proposal.needle)}\` (~${ms.toFixed(1)} ms per lane): ${proposal.fix}`);
  lines.push(
    `- \`${locate('src/state/state-file.ts', 'async update<R>(')}\` (lanes booting at once, ~${fmtMs(idleMs)} per ${AT_ONCE} lanes): queue the ` +
      'updates of one state file inside the process (a promise chain per path) before taking the cross-process lock. Today every ' +
      'concurrent caller polls `proper-lockfile` itself, sleeping 5 ms growing to 100 ms (plus jitter) between tries, so after each ' +
      'release the lock stays free until some sleeper wakes up (the "lock free, not taken" column). With a queue, the next caller of ' +
      'the same process starts the moment the previous one releases, and only one caller per process polls.',
  );
  lines.push(
    `- \`${locate('src/databases/database-allocator.ts', 'await this.#withAdmin(async (client, version) => {')}\` (lanes booting at once): ` +
      'the clone runs inside `this.file.update(…)`, i.e. under the ledger lock, so N lanes that boot together clone strictly one ' +
      'after another and every other process waiting for the ledger waits for a whole `CREATE DATABASE`. Record the entry under ' +
      'the lock and clone outside it (PostgreSQL clones one template into several databases at once); on more cores, N-lane warm ' +
      'times shrink toward one clone per core.',
  );
  return lines;
}
