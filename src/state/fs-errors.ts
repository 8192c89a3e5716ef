import { accessSync, constants, existsSync } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import { STATE_DIR_ENV } from '../env-vars.js';
import { LanesError, messageOf } from '../errors.js';

/** Where the folder at fault is configured, for hints: e.g. `option stateDir or E2E_LANES_STATE_DIR`. */
export const STATE_DIR_SETTING = `option stateDir or ${STATE_DIR_ENV}`;

/** The error codes of file-system failures that a person has to fix (as opposed to bugs). */
const FIXABLE = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT', 'EISDIR', 'ENOTDIR', 'EEXIST', 'ELOOP', 'EMFILE', 'ENFILE', 'EIO']);

/** True when `error` is a Node file-system error with one of the given codes (any code when none are given). */
export function isFsError(error: unknown, ...codes: string[]): error is NodeJS.ErrnoException {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && (codes.length === 0 ? FIXABLE.has(code) : codes.includes(code));
}

/**
 * A `STATE_UNWRITABLE` error for a failed file-system operation: names the path, says what was
 * being done and what the system said, and gives the fix that fits the error code.
 * @param doing e.g. `write state file`, `create log folder`.
 * @param setting where the folder is configured, for the hint.
 */
export function unwritable(error: unknown, doing: string, path: string, setting = STATE_DIR_SETTING): LanesError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return new LanesError('STATE_UNWRITABLE', `Could not ${doing} ${path}: ${describeCode(code, messageOf(error))}.`, {
    hint: hintFor(code, path, setting),
    cause: error,
    details: { path, ...(code ? { errno: code } : {}) },
  });
}

/**
 * The real reason a recursive `mkdir` of `folder` failed. Node reports `ENOENT` when a missing
 * ancestor could not be created; the nearest existing ancestor then says why (`EROFS`, `EACCES`).
 */
export function mkdirCause(error: unknown, folder: string): unknown {
  if (!isFsError(error, 'ENOENT')) return error;
  let ancestor = dirname(folder);
  for (let depth = 0; depth < 256 && !existsSync(ancestor) && dirname(ancestor) !== ancestor; depth++) ancestor = dirname(ancestor);
  try {
    accessSync(ancestor, constants.W_OK);
  } catch (cause) {
    return cause;
  }
  return error;
}

function describeCode(code: string | undefined, message: string): string {
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${code}) for user ${userName()}`;
    case 'EROFS':
      return 'the file system is read-only (EROFS)';
    case 'ENOSPC':
      return 'no space left on the device (ENOSPC)';
    case 'EDQUOT':
      return 'the disk quota is exhausted (EDQUOT)';
    default:
      return message;
  }
}

function hintFor(code: string | undefined, path: string, setting: string): string {
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `Give ${userName()} write access to ${path} (or its folder), e.g. \`chown\` it to this user, or choose a folder this user owns (${setting}).`;
    case 'EROFS':
      return `Mount the folder read-write, or choose a writable folder (${setting}).`;
    case 'ENOSPC':
    case 'EDQUOT':
      return `Free space on the device that holds ${path} (\`df -h\`), or choose a folder on another device (${setting}). What was recorded before is unchanged.`;
    case 'EISDIR':
    case 'ENOTDIR':
    case 'EEXIST':
      return `Something other than what e2e-lanes expects is in the way at ${path} (a folder where a file belongs, or the reverse): remove or rename it, or choose another folder (${setting}).`;
    default:
      return `Check that ${path} and its folder exist and are writable (${setting}).`;
  }
}

/** This process's user as `name (uid N)`, from the password database rather than `$USER` (which `su`/`setpriv` may leave stale). */
function userName(): string {
  const uid = process.getuid?.();
  let name: string | undefined;
  try {
    name = userInfo().username;
  } catch {
    name = undefined; // no entry in the password database
  }
  if (uid === undefined) return name ?? 'this user';
  return name ? `${name} (uid ${uid})` : `uid ${uid}`;
}

/**
 * Throws `STATE_NOT_A_FILE` unless `path` is a regular file or does not exist. A state file that is
 * a symbolic link is refused: writing through it would change whatever it points at (another
 * suite's state, say).
 * @param setting where the folder is configured, for the hint.
 */
export async function assertRegularFileOrMissing(path: string, setting = STATE_DIR_SETTING): Promise<void> {
  let stats;
  try {
    stats = await lstat(path);
  } catch (error) {
    if (isFsError(error, 'ENOENT')) return;
    if (isFsError(error, 'ENOTDIR')) throw unwritable(error, 'reach', path, setting);
    if (isFsError(error)) throw unwritable(error, 'inspect', path, setting);
    throw error;
  }
  if (stats.isFile()) return;
  if (stats.isSymbolicLink()) {
    const target = await readlink(path).catch(() => '(unreadable)');
    throw new LanesError('STATE_NOT_A_FILE', `State file ${path} is a symbolic link to ${target}; e2e-lanes does not read or write state through links, so the link target was left as it is.`, {
      hint: `Remove the link (\`rm ${path}\`) so e2e-lanes creates its own file there, or give this suite its own state folder (${setting}) instead of linking state files of another suite.`,
      details: { path, target },
    });
  }
  const kind = stats.isDirectory() ? 'a directory' : stats.isFIFO() ? 'a named pipe' : stats.isSocket() ? 'a socket' : 'a device';
  throw new LanesError('STATE_NOT_A_FILE', `State file ${path} is ${kind}, not a file.`, {
    hint: `Remove it (for a folder made by mistake, \`rmdir ${path}\`; for a volume mounted onto the file, mount its folder instead) so e2e-lanes can create the file, or choose another state folder (${setting}).`,
    details: { path, kind },
  });
}
