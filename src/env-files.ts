import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import dotenv from 'dotenv';
import { ENV_PREFIX } from './env-vars.js';
import { LanesError, messageOf } from './errors.js';

/**
 * `.env` files the user names: a lane server's own (`envFile` of a server), and the runner's
 * settings (`envFile` of withLanes). Parsed with dotenv, never executed, never printed.
 */

/** One parsed file. */
export interface EnvFile {
  /** Absolute path. */
  path: string;
  values: Record<string, string>;
}

/** `undefined`, one path or several, as an option takes them. */
export type EnvFileOption = string | string[] | undefined;

/** True for what an `envFile` option accepts. */
export function isEnvFileOption(value: unknown): value is EnvFileOption {
  return value === undefined || (typeof value === 'string' && value !== '') || (Array.isArray(value) && value.every((item) => typeof item === 'string' && item !== ''));
}

/**
 * Reads the files of `option`, relative to `cwd`, in order.
 * @throws {LanesError} `INVALID_OPTION` naming the option and the file that cannot be read.
 */
export function readEnvFiles(option: EnvFileOption, cwd: string, optionName: string): EnvFile[] {
  const files = option === undefined ? [] : Array.isArray(option) ? option : [option];
  return files.map((file) => {
    const path = resolve(cwd, file);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new LanesError('INVALID_OPTION', `${optionName} names ${path}, which cannot be read: ${messageOf(error)}.`, {
        hint: `Fix \`${optionName}\` (paths are relative to ${cwd}), or create the file.`,
        cause: error,
      });
    }
    return { path, values: dotenv.parse(text) };
  });
}

/**
 * Loads the toolkit's own settings (`E2E_LANES_*`) of the runner from the files of `option` into
 * `env`, without replacing what is set already (the shell wins, as with dotenv). Other variables of
 * the files are left out: the app's variables are the servers' business. Resolves the names set.
 */
export function loadRunnerSettings(option: EnvFileOption, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string[] {
  const set: string[] = [];
  for (const file of readEnvFiles(option, cwd, 'envFile')) {
    for (const [name, value] of Object.entries(file.values)) {
      if (!name.startsWith(ENV_PREFIX) || env[name] !== undefined) continue;
      env[name] = value;
      set.push(name);
    }
  }
  return set;
}
