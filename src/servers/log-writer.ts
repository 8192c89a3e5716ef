import { writeSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { redactText } from '../redact.js';
import { LOG_WRITER_SECRETS_ENV } from '../env-vars.js';
import { MAX_LINE_CHARS } from './output.js';

/**
 * The log writer of a server that outlives its runner (kept and warm lanes, `output: 'file'`): a
 * detached process of its own whose stdin is the server's stdout and stderr and whose stdout is the
 * server's log file. It writes every line as the runner's own sink does (its time in ISO 8601, UTC,
 * then the line, redacted of the lane's secrets) and exits when the last process holding the pipe
 * (the server, its children) has closed it. It is started by {@link OutputSink}.
 */


function main(): void {
  let secrets: string[] = [];
  try {
    const parsed: unknown = JSON.parse(process.env[LOG_WRITER_SECRETS_ENV] ?? '[]');
    if (Array.isArray(parsed)) secrets = parsed.filter((item): item is string => typeof item === 'string');
  } catch {
    // no secrets given: nothing to redact
  }
  delete process.env[LOG_WRITER_SECRETS_ENV];
  const write = (raw: string): void => {
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const line = redactText(text.length > MAX_LINE_CHARS ? `${text.slice(0, MAX_LINE_CHARS)}…` : text, secrets);
    try {
      writeSync(1, `${new Date().toISOString()} ${line}\n`);
    } catch {
      // a full disk: the runner's status reports it (logSpaceProblem); keep reading so the server never blocks
    }
  };
  const decoder = new StringDecoder('utf8');
  let partial = '';
  process.stdin.on('data', (chunk: Buffer) => {
    const lines = (partial + decoder.write(chunk)).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) write(line);
    if (partial.length > MAX_LINE_CHARS) {
      write(partial);
      partial = '';
    }
  });
  process.stdin.once('end', () => {
    partial += decoder.end();
    if (partial !== '') write(partial);
  });
  // Its own session: no terminal signal reaches it; it ends with its input.
  for (const signal of ['SIGINT', 'SIGHUP'] as const) process.on(signal, () => undefined);
}

main();
