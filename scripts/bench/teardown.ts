/**
 * Part 5: time to tear down N lanes (ports + database, no servers) with LaneManager.teardown(),
 * against the floor of dropping N databases with raw `DROP DATABASE … WITH (FORCE)`.
 */
import pg from 'pg';
import { LaneManager } from '../../src/index.ts';
import { DEMO, type BenchContext } from './context.ts';
import { fmtMs, fmtRange, fmtRatio, range, Samples, table, timed, type PartResult } from './measure.ts';
import { summarize, Tracer } from './trace.ts';

export async function runTeardown(ctx: BenchContext): Promise<PartResult> {
  const counts = ctx.options.quick ? [1, 4] : [1, 4, 8];
  const reps = ctx.reps();
  const warm = await ctx.warmTemplate();
  const samples = new Samples();
  for (let rep = 0; rep < reps; rep++) {
    for (const n of counts) {
      await ctx.quiet();
      samples.add(`toolkit/${n}`, (await lanes(ctx, n, warm.prefix)).ms);
      samples.add(`floor/${n}`, await rawDrops(ctx, n, warm.name));
    }
  }
  const traced = counts.at(-1)!;
  const tracer = Tracer.start();
  let profile: { ms: number; spans?: Map<string, number> };
  try {
    profile = await lanes(ctx, traced, warm.prefix, tracer);
  } finally {
    tracer.stop();
  }
  const rows = counts.map((n) => {
    const toolkit = samples.median(`toolkit/${n}`);
    const floor = samples.median(`floor/${n}`);
    return [n, fmtMs(toolkit), fmtRange(samples.get(`toolkit/${n}`)), fmtMs(toolkit / n), fmtMs(floor), fmtRatio(toolkit / floor)];
  });
  const markdown = [
    table(['lanes (N)', 'LaneManager.teardown()', 'min–max', 'per lane', 'raw drops (floor)', '÷ floor'], rows),
    '',
    `Medians of ${reps} repetition(s). Each repetition boots N lanes (ports + a database cloned from the cached template, no`,
    'servers) with a fresh LaneManager, then times `teardown()`: every database dropped one after another',
    '(`DROP DATABASE … WITH (FORCE)`), the ports and the lane entries released, the reference to PostgreSQL let go.',
    'The floor drops N clones with raw `DROP DATABASE … WITH (FORCE)` on an open connection. Stopping servers is not part of',
    'this table: part 4 reports the whole teardown of the suite\'s lanes, servers included.',
    '',
    `**Where the milliseconds of one teardown of ${traced} lanes go** (one extra traced run, ${fmtMs(profile.ms)}; hooks as in part 2):`,
    '',
    table(['step', 'ms', 'share'], summarize([profile.spans ?? new Map()], [profile.ms]).rows),
  ].join('\n');
  return { id: 'teardown', title: '5. Teardown: N lanes', markdown, targets: [] };
}

/** Boots N lanes with a fresh LaneManager and times its teardown (traced when a tracer is given). */
async function lanes(ctx: BenchContext, n: number, prefix: string, tracer?: Tracer): Promise<{ ms: number; spans?: Map<string, number> }> {
  const manager = new LaneManager({
    servers: [],
    database: { ...DEMO, prefix },
    stateDir: await ctx.dir('teardown'),
    runId: ctx.fresh('t'),
    portRange: [40000, 40999],
  });
  let tornDown = false;
  try {
    await manager.prepare();
    await Promise.all(range(n).map((i) => manager.ensureLane(`lane-${i}`)));
    tracer?.take();
    const { ms } = await timed(() => manager.teardown());
    const spans = tracer?.take();
    tornDown = true;
    // The template and its ready copies are caches kept between runs; no lane database may stay.
    const left = (await ctx.databasesStartingWith(`${prefix}_`)).filter((name) => !name.startsWith(`${prefix}_tpl_`) && !name.startsWith(`${prefix}_pool_`));
    if (left.length > 0) throw new Error(`teardown left ${left.length} database(s) behind`);
    return spans ? { ms, spans } : { ms };
  } finally {
    if (!tornDown) await manager.teardown().catch(() => undefined);
  }
}

async function rawDrops(ctx: BenchContext, n: number, template: string): Promise<number> {
  const names = range(n).map((i) => `${ctx.id}d${n}_${i}`);
  try {
    for (const name of names) await ctx.admin.query(ctx.cloneSql(name, template));
    const { ms } = await timed(async () => {
      for (const name of names) await ctx.admin.query(`DROP DATABASE ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    });
    return ms;
  } finally {
    await ctx.dropDatabasesStartingWith(`${ctx.id}d${n}_`);
  }
}
