import { chmod, mkdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { HOST_STATE_DIR_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';
import { isFsError, mkdirCause, unwritable } from '../state/fs-errors.js';

/** Where the host-wide folder is configured, for hints. */
export const HOST_FOLDER_SETTING = `${HOST_STATE_DIR_ENV} (default <tmp>/e2e-lanes)`;

const SHARED_MODE = 0o1777;

/** The host-wide folder: `E2E_LANES_HOST_STATE_DIR`, else `<tmp>/e2e-lanes`. */
export function hostStateDir(): string {
  return resolve(process.env[HOST_STATE_DIR_ENV] || join(tmpdir(), 'e2e-lanes'));
}

/**
 * Makes `dir` usable by every user of the host: created with mode 1777; an existing folder of this
 * user is brought to 1777 (older versions made it 0755); another user's folder must already let
 * everyone write in it.
 */
export async function prepareFolder(dir: string): Promise<void> {
  try {
    await mkdir(dirname(dir), { recursive: true });
    await mkdir(dir, { mode: SHARED_MODE });
    await chmod(dir, SHARED_MODE); // mkdir's mode is cut by the umask.
    return;
  } catch (error) {
    if (!isFsError(error, 'EEXIST')) {
      const cause = mkdirCause(error, dir);
      if (isFsError(cause)) throw unwritable(cause, 'create the host-wide folder', dir, HOST_FOLDER_SETTING);
      throw cause;
    }
  }
  const stats = await stat(dir).catch((error: unknown) => {
    throw isFsError(error) ? unwritable(error, 'reach the host-wide folder', dir, HOST_FOLDER_SETTING) : error;
  });
  if (!stats.isDirectory()) {
    throw new LanesError('STATE_UNWRITABLE', `The host-wide folder of port claims ${dir} is not a folder.`, {
      hint: `Remove it, or set ${HOST_STATE_DIR_ENV} to another folder.`,
      details: { path: dir },
    });
  }
  const uid = process.getuid?.();
  if (uid === undefined || (uid === 0 && stats.uid !== 0)) return; // root may write anywhere; never change another user's folder
  const mode = stats.mode & 0o7777;
  if (stats.uid === uid) {
    if (mode !== SHARED_MODE) {
      await chmod(dir, SHARED_MODE).catch((error: unknown) => {
        throw isFsError(error) ? unwritable(error, 'share (chmod 1777) the host-wide folder', dir, HOST_FOLDER_SETTING) : error;
      });
    }
    return;
  }
  if ((mode & 0o1002) !== 0o1002) {
    const why = mode & 0o002 ? 'it is writable by everyone without the sticky bit, so any user could remove the claims of others' : `so uid ${uid} may not write in it (permission denied)`;
    throw new LanesError(
      'STATE_UNWRITABLE',
      `Could not use the host-wide folder of port claims ${dir}: it belongs to uid ${stats.uid} with mode ${mode.toString(8).padStart(4, '0')}, ${why}.`,
      {
        hint: `Every user of the host shares this folder, so it must be mode 1777 like /tmp: run \`chmod 1777 ${dir}\` as its owner or root (a run of e2e-lanes by its owner does this by itself), or set ${HOST_STATE_DIR_ENV} to a folder every user may write in.`,
        details: { path: dir, owner: stats.uid, mode },
      },
    );
  }
}

