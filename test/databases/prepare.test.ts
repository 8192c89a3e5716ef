import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { resolveDatabaseAllocatorOptions } from '../../src/databases/options.js';
import { prepareServerAndTemplate } from '../../src/databases/prepare.js';
import { ServerAccess } from '../../src/databases/sql/server-access.js';
import { QUIET_ENV } from '../../src/env-vars.js';
import { tempDir } from '../helpers/tmp.js';
import { FIXTURES, useTestDatabases } from './helpers.js';

const server = useTestDatabases('prep');
const accesses: ServerAccess[] = [];
after(async () => {
  for (const access of accesses) await access.release();
});

/** Runs `fn` with console.log and console.warn captured; resolves what they printed. */
async function printed(fn: () => Promise<unknown>): Promise<string> {
  const lines: string[] = [];
  const { log, warn } = console;
  const quiet = process.env[QUIET_ENV];
  delete process.env[QUIET_ENV];
  console.log = (...args: unknown[]) => void lines.push(args.join(' '));
  console.warn = (...args: unknown[]) => void lines.push(args.join(' '));
  try {
    await fn();
  } finally {
    console.log = log;
    console.warn = warn;
    if (quiet !== undefined) process.env[QUIET_ENV] = quiet;
  }
  return lines.join('\n');
}

describe("an allocator's first use of its server", () => {
  it('opens the records first, then builds the template; without lane roles it says so once', async (t) => {
    const stateDir = await tempDir(t);
    const options = resolveDatabaseAllocatorOptions({ stateDir, adminUrl: server.adminUrl, prefix: server.prefix, registry: 'file', laneRoles: false, migrations: `${FIXTURES}basic/migrations` });
    const access = new ServerAccess({ adminUrl: options.adminUrl, stateDir, runId: options.runId, connectTimeoutMs: options.connectTimeoutMs });
    accesses.push(access);
    const steps: string[] = [];
    const notices = { noLaneRoles: false };
    const openRecords = async (): Promise<void> => {
      steps.push(`records (joined: ${access.joined})`);
    };
    let template: Awaited<ReturnType<typeof prepareServerAndTemplate>> | undefined;
    const first = await printed(async () => (template = await prepareServerAndTemplate(access, options, openRecords, notices)));
    assert.match(first, /laneRoles: false: every lane connects as the admin role/);
    assert.deepEqual(steps, ['records (joined: true)']);
    assert.match(template!.name, new RegExp(`^${server.prefix}_tpl_[0-9a-f]{12}$`));
    const second = await printed(() => prepareServerAndTemplate(access, options, openRecords, notices));
    assert.doesNotMatch(second, /laneRoles: false/, 'said once per allocator');
  });

  it('warns when the connections expected come near what the server allows', async (t) => {
    const stateDir = await tempDir(t);
    const options = resolveDatabaseAllocatorOptions({ stateDir, adminUrl: server.adminUrl, prefix: server.prefix, registry: 'file', laneRoles: false, migrations: `${FIXTURES}basic/migrations`, expectedConnections: 100_000 });
    const access = new ServerAccess({ adminUrl: options.adminUrl, stateDir, runId: options.runId, connectTimeoutMs: options.connectTimeoutMs });
    accesses.push(access);
    const output = await printed(() => prepareServerAndTemplate(access, options, async () => undefined, { noLaneRoles: true }));
    assert.match(output, /100000 connections expected \(option expectedConnections\)/);
  });
});
