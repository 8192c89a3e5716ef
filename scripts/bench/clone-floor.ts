/**
 * Part 2: the physical floor of a lane database (a raw `CREATE DATABASE … TEMPLATE` on this
 * server) against the toolkit's per-lane `allocateDatabaseForProject`, and where the difference goes.
 */
import pg from 'pg';
import { DatabaseAllocator } from '../../src/index.ts';
import { DEMO, type BenchContext } from './context.ts';
import { fmtMs, fmtRange, fmtRatio, median, range, Samples, table, timed, type PartResult } from './measure.ts';
import { summarize, Tracer } from './trace.ts';

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
    `together; medians of ${atOnce.length}): "ledger lock held" adds up every hold of the state file's lock (recording and confirming`,
    'each entry); the clones run outside it, side by side.',
    '',
    table(
      ['lanes', 'wall', `${AT_ONCE} × floor (one after another)`, 'ledger lock held'],
      [[AT_ONCE, fmtMs(median(atOnce.map((a) => a.wallMs))), fmtMs(AT_ONCE * floor), fmtMs(median(atOnce.map((a) => a.heldMs)))]],
    ),
    '',
    ...overhead(breakdown.byLabel),
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
}

/** {@link AT_ONCE} lanes allocated at once by a fresh, prepared allocator, with the ledger lock's holds traced. */
async function lanesAtOnce(ctx: BenchContext, prefix: string, tracer: Tracer, rep: number): Promise<AtOnce> {
  const allocator = new DatabaseAllocator({ ...DEMO, prefix, stateDir: await ctx.dir('floor-at-once'), runId: ctx.fresh('r') });
  try {
    await allocator.prepare();
    await ctx.quiet();
    tracer.takeHolds();
    const { ms } = await timed(() => Promise.all(range(AT_ONCE).map((i) => allocator.allocateDatabaseForProject(`at-once-${rep}-${i}`))));
    const { heldMs } = tracer.takeHolds();
    return { wallMs: ms, heldMs };
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

/** What the trace says about the toolkit's own share of one allocation. */
function overhead(byLabel: Map<string, number>): string[] {
  const total = [...byLabel.values()].reduce((sum, ms) => sum + ms, 0);
  const clone = [...byLabel].filter(([label]) => label.startsWith('sql: CREATE DATABASE')).reduce((sum, [, ms]) => sum + ms, 0);
  if (total <= 0) return [];
  const rest = total - clone;
  return [
    `Of one traced allocation, ${fmtMs(clone)} (${((clone / total) * 100).toFixed(0)} %) is PostgreSQL copying the template; the toolkit's own`,
    `work around it (state file under its lock, the admin connection it keeps, JavaScript) is ${fmtMs(rest)}. The entry is recorded under`,
    'the ledger lock and the clone runs outside it, so lanes that boot together clone side by side (table above).',
  ];
}
