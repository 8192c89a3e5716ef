/**
 * Part 6, continued: what a role per lane (`database.laneRoles`, on by default) costs, side by side
 * with the feature off, on the demo schema: a lane's database at boot (a ready copy renamed in, or a
 * clone, plus the role's creation and its grant) and a `swap` reset (the grant made in the rename's
 * transaction), and the role's own SQL alone.
 */
import pg from 'pg';
import { ensureLaneRole, laneRoleName } from '../../src/databases/sql/roles.ts';
import { DatabaseAllocator } from '../../src/index.ts';
import { DEMO, type BenchContext } from './context.ts';
import { fmtMs, percentile, range, Samples, table, timed, type TargetResult } from './measure.ts';

const MODES = ['on', 'off'] as const;

/** The rows, notes and targets of the comparison. */
export async function measureLaneRoles(ctx: BenchContext, reps: number): Promise<{ markdown: string; targets: TargetResult[] }> {
  const samples = new Samples();
  const allocators = Object.fromEntries(
    await Promise.all(
      MODES.map(async (mode) => [
        mode,
        new DatabaseAllocator({ ...DEMO, prefix: ctx.fresh(`l${mode}`), stateDir: await ctx.dir(`lane-roles-${mode}`), runId: ctx.fresh('r'), pool: 2, laneRoles: mode === 'on' }),
      ]),
    ),
  ) as Record<(typeof MODES)[number], DatabaseAllocator>;
  try {
    const template = await allocators.on.prepare();
    await allocators.off.prepare();
    for (const mode of MODES) await allocators[mode].allocateDatabaseForProject('fresh');
    await ctx.quiet();
    for (const round of range(reps)) {
      const order = round % 2 === 0 ? MODES : ([...MODES].reverse() as unknown as typeof MODES);
      for (const mode of order) {
        const allocator = allocators[mode];
        await allocator.poolSettled();
        samples.add(`boot ${mode}`, (await timed(() => allocator.allocateDatabaseForProject(`boot-${round}`))).ms);
        await allocator.poolSettled();
        samples.add(`swap ${mode}`, (await timed(() => allocator.resetDatabaseForProject('fresh', { strategy: 'swap' }))).ms);
        await allocator.releaseDatabaseForProject(`boot-${round}`);
      }
      // The role's own SQL on a database of its own: create (or bring back) the role, grant it the database.
      const name = `${ctx.id}lr${round}`;
      await ctx.admin.query(ctx.cloneSql(name, template.name));
      const mark = { toolkit: 'e2e-lanes' as const, kind: 'lane' as const, runId: 'bench', project: 'bench', created: new Date().toISOString() };
      samples.add('role', (await timed(() => ensureLaneRole(ctx.admin, name, 'bench-password', template.name, mark, { grantDatabase: true }))).ms);
      await ctx.admin.query(`DROP DATABASE ${pg.escapeIdentifier(name)}`);
      await ctx.admin.query(`DROP ROLE ${pg.escapeIdentifier(laneRoleName(name))}`);
    }
  } finally {
    for (const mode of MODES) {
      await allocators[mode].releaseRun().catch(() => undefined);
      await allocators[mode].close();
    }
  }
  const p50 = (name: string): number => samples.median(name);
  const p90 = (name: string): number => percentile(samples.get(name), 90);
  const added = p50('boot on') - p50('boot off');
  const markdown = [
    table(
      ['demo schema', 'laneRoles on, p50', 'p90', 'laneRoles off, p50', 'p90'],
      [
        ["a lane's database at boot (ready copy or clone, role, grant)", fmtMs(p50('boot on')), fmtMs(p90('boot on')), fmtMs(p50('boot off')), fmtMs(p90('boot off'))],
        ['`swap` reset', fmtMs(p50('swap on')), fmtMs(p90('swap on')), fmtMs(p50('swap off')), fmtMs(p90('swap off'))],
        ["the role's own SQL (create or alter it, grant it the database)", fmtMs(p50('role')), fmtMs(p90('role')), '–', '–'],
      ],
    ),
    '',
    `- ${samples.get('boot on').length} rounds, the two modes interleaved (the order flips every round), the ready pool refilled (not measured) before each step. With lane roles, a lane's boot creates its role (a SCRAM verifier computed by the toolkit: the server hashes nothing), grants it its database and marks the database in the transaction that renames the ready copy in (one round trip, one commit, as without roles); a lane that has to clone (no ready copy left) does the role in one more round trip. A \`swap\` grants the ready copy to the lane role in the rename's own transaction. The role's own SQL alone (its last row) is that statement in a transaction of its own.`,
  ].join('\n');
  const targets: TargetResult[] = [
    {
      name: "lane role, added to a lane's boot (boot p50 on − off)",
      goal: '≤ 2 ms',
      measured: `${added >= 0 ? '+' : '−'}${fmtMs(Math.abs(added))} (${fmtMs(p50('boot on'))} on, ${fmtMs(p50('boot off'))} off; the role's own SQL alone ${fmtMs(p50('role'))})`,
      pass: added <= 2,
    },
    { name: '`swap` reset p50 with lane roles, demo schema', goal: '≤ 10 ms', measured: `${fmtMs(p50('swap on'))} (off: ${fmtMs(p50('swap off'))})`, pass: p50('swap on') <= 10 },
  ];
  return { markdown, targets };
}
