/**
 * The hash a template is named after: everything its content depends on (migrations, seed, extra
 * hash inputs, the PostgreSQL major version, the toolkit version), so a change to any of them
 * builds a new template and an unchanged checkout reuses the old one. Private to the databases module.
 * @internal
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { LanesError, messageOf } from '../../errors.js';
import { displayPath } from './command.js';
import { readMigrations } from './migrations.js';
import { sha256Hex } from '../sql/names.js';
import type { CommandStep } from '../types.js';
import { toolkitVersion } from './version.js';

/** Everything a template's content depends on. */
export interface TemplateInputs {
  /** Migrations folder (absolute), command, or false. */
  migrations: string | CommandStep | false;
  /** Seed module path (absolute) or command. */
  seed?: string | CommandStep | undefined;
  /** More files or folders (absolute) whose content counts. */
  hashInputs?: readonly string[];
  /** Objects owned by the template's owner role, for lane roles (see roles.ts). @default false */
  laneRoles?: boolean;
  /**
   * With lane roles, the admin role building it: its owner role is that admin's to grant (a
   * non-superuser admin may grant only the roles it created). @default none
   */
  adminRole?: string;
  /** `server_version_num` of the server: its major version counts. */
  serverVersion: number;
}

/**
 * The hash of a template: SHA-256 over the sorted migration names and contents (or the command),
 * the seed module's content (or command), the extra hash inputs, the PostgreSQL major version and
 * the e2e-lanes version. Paths are left out, so every checkout of a project agrees.
 */
export async function computeTemplateHash(inputs: TemplateInputs): Promise<string> {
  // 2: templates keep a snapshot of their rows (see snapshot.ts).
  const parts: string[] = ['e2e-lanes template 2', `toolkit ${toolkitVersion()}`, `postgres ${Math.floor(inputs.serverVersion / 10000)}`];
  // Who owns the objects: a template built for lane roles differs from one built without.
  if (inputs.laneRoles) parts.push(`owner role 1 admin ${inputs.adminRole ?? ''}`);
  const { migrations, seed } = inputs;
  if (migrations === false) parts.push('migrations none');
  else if (typeof migrations === 'string') for (const m of await readMigrations(migrations)) parts.push(`migration ${m.name} ${m.checksum}`);
  else parts.push(`migrations command ${migrations.command}`);
  if (seed === undefined) parts.push('seed none');
  else if (typeof seed === 'string') parts.push(`seed module ${sha256Hex(await readInput(seed, 'seed'))}`);
  else parts.push(`seed command ${seed.command}`);
  for (const input of inputs.hashInputs ?? []) parts.push(...(await hashInput(input)));
  return sha256Hex(parts.join('\n')).slice(0, 12);
}

async function readInput(path: string, option: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new LanesError('INVALID_OPTION', `${displayPath(path)} (option \`${option}\`) could not be read: ${messageOf(error)}`, {
      hint: `Fix option \`${option}\`: paths are relative to the current folder.`,
      cause: error,
    });
  }
}

/** Lines for one hash input: a file's content, or every file of a folder with its relative path. */
async function hashInput(path: string): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw new LanesError('INVALID_OPTION', `Hash input ${displayPath(path)} does not exist.`, { hint: 'Fix option `hashInputs`.', cause: error });
  }
  if (!info.isDirectory()) return [`input ${sha256Hex(await readInput(path, 'hashInputs'))}`];
  const files = (await readdir(path, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
  const lines = [`input folder ${files.length}`];
  for (const file of files) lines.push(`input ${relative(path, file).split('\\').join('/')} ${sha256Hex(await readInput(file, 'hashInputs'))}`);
  return lines;
}
