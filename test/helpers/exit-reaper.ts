import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The log of run `runId`'s exit reaper in `stateDir` ('' while there is none). */
export function exitReaperLog(stateDir: string, runId: string): Promise<string> {
  return readFile(join(stateDir, 'lanes', runId, 'exit-reaper.log'), 'utf8').catch(() => '');
}

/**
 * Waits (bounded) until the exit reaper of run `runId` wrote its last line (it is done), and
 * resolves its log; fails with what it wrote so far, and `context`, otherwise.
 */
export async function exitReaperDone(stateDir: string, runId: string, context: () => string = () => '', timeoutMs = 30_000): Promise<string> {
  const done = /ended without its teardown|leaving its run/;
  const deadline = Date.now() + timeoutMs;
  let text = await exitReaperLog(stateDir, runId);
  while (!done.test(text) && Date.now() < deadline) {
    await sleep(100);
    text = await exitReaperLog(stateDir, runId);
  }
  assert.match(text, done, `the exit reaper of run ${runId} did not finish within ${timeoutMs / 1000} s: ${text || 'no exit-reaper.log'}\n${context()}`);
  return text;
}
