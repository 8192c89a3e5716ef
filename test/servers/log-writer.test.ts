import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { OutputSink } from '../../src/servers/output.js';
import { isGone, tempDir } from './helpers.js';

const SECRET = 'pw-9f3a1c77e2';
const TIMED = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z /;

test("a server that outlives its runner (output 'file') gets a log whose every line carries its time and none of the lane's secrets", { timeout: 30_000 }, async (t) => {
  const logFile = path.join(tempDir(t), 'api.log');
  const sink = new OutputSink({ logFile, label: '[shop:api]', secrets: [SECRET], debug: false, output: 'file' });
  // Prints a line at once, one on stderr, and one after the runner let go of everything (as a warm server does).
  const script = `console.log('listening with ${SECRET}'); console.error('a warning'); setTimeout(() => console.log('later, still ${SECRET}'), 400);`;
  const child = spawn(process.execPath, ['-e', script], { detached: true, stdio: sink.stdio() });
  sink.spawned();
  child.unref();
  t.after(() => {
    if (child.pid !== undefined && !isGone(child.pid)) process.kill(-child.pid, 'SIGKILL');
  });
  await sink.close();

  const deadline = Date.now() + 10_000;
  let lines: string[] = [];
  while (Date.now() < deadline) {
    lines = readFileSync(logFile, 'utf8').split('\n').filter((line) => line !== '');
    if (lines.length >= 3) break;
    await sleep(50);
  }
  assert.equal(lines.length, 3, lines.join('\n'));
  for (const line of lines) assert.match(line, TIMED, line);
  assert.deepEqual(lines.map((line) => line.replace(TIMED, '')).sort(), ['a warning', 'later, still ***', 'listening with ***']);
  assert.ok(!readFileSync(logFile, 'utf8').includes(SECRET), 'no secret in the log');
  // The tail quoted in messages is the lines without their times.
  assert.deepEqual(sink.tail().sort(), ['a warning', 'later, still ***', 'listening with ***']);
});

test('the log writer outlives the runner that started it: lines the server writes after the runner exited are in its log, timed and redacted', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const logFile = path.join(dir, 'api.log');
  const pidFile = path.join(dir, 'server.pid');
  const output = new URL('../../src/servers/output.ts', import.meta.url).href;
  const runner = path.join(dir, 'runner.mts');
  const server = `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setTimeout(() => console.log('after the runner, ${SECRET}'), 1500);`;
  writeFileSync(
    runner,
    `import { spawn } from 'node:child_process';
import { OutputSink } from ${JSON.stringify(output)};
const sink = new OutputSink({ logFile: ${JSON.stringify(logFile)}, label: '[shop:api]', secrets: [${JSON.stringify(SECRET)}], debug: false, output: 'file' });
const child = spawn(process.execPath, ['-e', ${JSON.stringify(server)}], { detached: true, stdio: sink.stdio() });
sink.spawned();
child.unref();
await sink.close();
`,
  );
  const run = spawn(process.execPath, ['--import', 'tsx', runner], { stdio: 'inherit' });
  t.after(() => {
    try {
      const pid = Number(readFileSync(pidFile, 'utf8'));
      if (!isGone(pid)) process.kill(-pid, 'SIGKILL');
    } catch {
      // never started
    }
  });
  const code = await new Promise((resolve) => run.once('exit', resolve));
  assert.equal(code, 0);
  const deadline = Date.now() + 15_000;
  let text = '';
  while (Date.now() < deadline && !text.includes('after the runner')) {
    text = readFileSync(logFile, 'utf8');
    await sleep(100);
  }
  assert.match(text, /^\d{4}-\d{2}-\d{2}T[\d:.]+Z after the runner, \*\*\*$/m);
  assert.ok(!text.includes(SECRET));
});
