import { execFile, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The CommonJS fixture app: a package.json without "type", a TS config and a TS seed. */
export const CJS_APP = join(REPO_ROOT, 'test/fixtures/cjs-app');

/** What {@link installCjsApp} copies and links: by default the CommonJS fixture app, with `@playwright` and `pg`. */
export interface AppInstall {
  /** The fixture folder to copy. */
  from?: string;
  /** Packages of the checkout's node_modules linked into the app's, by the name the app imports (`{ vite: 'vite4' }` links the checkout's `vite4` as `vite`). */
  link?: Record<string, string>;
  /** Executables of the linked packages put in the app's `node_modules/.bin`, by name: the path inside the app's node_modules. */
  bin?: Record<string, string>;
}

/**
 * A copy of a CommonJS fixture app (the CommonJS fixture app by default) in a temporary folder, with
 * e2e-lanes installed in its node_modules the way npm installs it: a real folder holding
 * package.json, bin and a fresh build of this checkout's src. Playwright treats files under
 * node_modules as a library's (it does not compile them), so a symlink to the checkout would not
 * behave like an install. The dependencies are the checkout's, linked. Call `remove()` when done
 * (e.g. in `after()`); it runs even when the install failed halfway.
 */
export async function installCjsApp(app: AppInstall = {}): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'e2e-lanes-cjs-app-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    await install(dir, app);
  } catch (error) {
    await remove();
    throw error;
  }
  return { dir, remove };
}

async function install(dir: string, app: AppInstall): Promise<void> {
  await cp(app.from ?? CJS_APP, dir, { recursive: true });
  const lanes = join(dir, 'node_modules/e2e-lanes');
  await mkdir(lanes, { recursive: true });
  await cp(join(REPO_ROOT, 'package.json'), join(lanes, 'package.json'));
  await cp(join(REPO_ROOT, 'bin'), join(lanes, 'bin'), { recursive: true });
  await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', join(lanes, 'dist'), '--declaration', 'false', '--declarationMap', 'false'], {
    cwd: REPO_ROOT,
    timeout: 120_000,
  });
  await symlink(join(REPO_ROOT, 'node_modules'), join(lanes, 'node_modules'), 'dir');
  for (const [name, target] of Object.entries(app.link ?? { '@playwright': '@playwright', pg: 'pg' })) {
    await symlink(join(REPO_ROOT, 'node_modules', target), join(dir, 'node_modules', name), 'dir');
  }
  if (app.bin) await mkdir(join(dir, 'node_modules/.bin'));
  for (const [name, path] of Object.entries(app.bin ?? {})) await symlink(join('..', path), join(dir, 'node_modules/.bin', name));
}

/** The end of a command run in the app. */
export interface AppRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout and stderr, interleaved. */
  output: string;
}

/**
 * Runs `node <dir>/<script> …args` in `dir` (or `cwd`) in a process group of its own, to completion; the group is
 * killed at `timeoutMs` and after the test, whatever happened.
 */
export function runInApp(t: TestContext, dir: string, script: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<AppRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, E2E_LANES_RUN_ID: '', E2E_LANES_OWNER_PID: '', ...options.env };
  const child = spawn(process.execPath, [join(dir, script), ...args], { cwd: options.cwd ?? dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const killGroup = (): void => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // the group is gone
    }
  };
  t.after(killGroup);
  return new Promise((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(killGroup, options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}
