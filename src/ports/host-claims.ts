import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, mkdir, open, readdir, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname, join, resolve } from 'node:path';
import { HOST_STATE_DIR_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';
import { debugLogger } from '../log.js';
import { isFsError, mkdirCause, unwritable } from '../state/fs-errors.js';
import { currentHost, judgeOwner, sameLane, type LaneKey, type LedgerEntry, type Owner, type Refreshable } from '../state/index.js';
import { isOwner } from '../state/owner.js';

const debug = debugLogger('ports');

/**
 * Host-wide claims: which state folder holds which port. Each state folder has its own
 * `allocated-ports.json`, so two suites with different state folders (two repositories, two
 * worktrees, two users) would otherwise only be kept apart by the bind probe, which races with a
 * server that has not bound its port yet. Every allocator on the host also claims its ports here
 * and skips ports that a live owner of another state folder claimed.
 *
 * The folder is shared by every user of the host, like `/tmp`: mode 1777 (world-writable, sticky),
 * one file per claimed port (`p<port>-<random>.json`, never rewritten by anyone but its creator).
 * There is no lock to share: a claim is made by creating its file and then looking at the port's
 * other claims; when a live claim of another state folder is there too, the newcomer withdraws. Of
 * two allocators claiming one port at once, the later one to look always sees the earlier one's file,
 * so at most one keeps it. Both may withdraw: each then waits a random moment and tries again while
 * nobody else claims the port (a few times at most), so that one of them gets it. The sticky bit
 * lets only a claim's creator (or root) remove it: another user's claim whose owner died stays on
 * disk, is ignored, and is removed by its user's next run.
 */
export interface PortClaim extends LedgerEntry {
  /** The state folder whose ledger holds the lane. */
  stateDir: string;
  port: number;
}

/** Where the folder is configured, for hints. */
const SETTING = `${HOST_STATE_DIR_ENV} (default <tmp>/e2e-lanes)`;

const CLAIM_NAME = /^p(\d{1,5})-[0-9a-f]{12}\.json$/;
const SHARED_MODE = 0o1777;
/** How often one port is tried when another state folder claims it at the same moment. */
const CLAIM_ATTEMPTS = 4;
/** A claim is a few hundred bytes (the project name is at most 512 characters); anything bigger is not one. */
const MAX_CLAIM_BYTES = 16_384;

/** The host-wide folder: `E2E_LANES_HOST_STATE_DIR`, else `<tmp>/e2e-lanes`. */
export function hostStateDir(): string {
  return resolve(process.env[HOST_STATE_DIR_ENV] || join(tmpdir(), 'e2e-lanes'));
}

/** A claim as found on disk: its file, its creator, and its owner with the heartbeat its mtime carries. */
interface FoundClaim {
  file: string;
  uid: number;
  claim: PortClaim;
}

/** The claims of this host, in {@link hostStateDir} (read when the object is made). */
export function hostClaims(): HostClaims {
  return new HostClaims(hostStateDir());
}

export class HostClaims implements Refreshable {
  /** The host-wide folder. */
  readonly path: string;
  #ready: Promise<void> | undefined;

  constructor(path: string) {
    this.path = path;
  }

  /**
   * Ports claimed by live owners of other state folders. On the way, removes (where this user may)
   * claims whose owner is gone, and claims of `stateDir` that its ledger does not hold: the caller
   * holds that ledger's lock, so nobody is in the middle of recording them.
   */
  async foreign(stateDir: string, leaseMs: number, held: readonly (LaneKey & { ports: Record<string, number> })[]): Promise<Set<number>> {
    const ports = new Set<number>();
    for (const found of await this.#list()) {
      const { claim } = found;
      if (claim.stateDir === stateDir) {
        const holds = held.some((entry) => sameLane(entry, claim) && Object.values(entry.ports).includes(claim.port));
        if (!holds) await this.#remove(found, 'not in its ledger');
        continue;
      }
      if (judgeOwner(claim.owner, leaseMs).alive) ports.add(claim.port);
      else if (ownerIsGone(claim.owner, leaseMs)) await this.#remove(found, 'its owner is gone');
    }
    return ports;
  }

  /**
   * Claims `port` for a lane of `stateDir`. Resolves the claim's file, or undefined when a live
   * owner of another state folder claimed the port too (this claim is then withdrawn).
   * @throws {LanesError} `STATE_UNWRITABLE` when the claim cannot be written.
   */
  async claim(port: number, stateDir: string, key: LaneKey, owner: Owner, leaseMs: number): Promise<string | undefined> {
    await this.#ensureFolder();
    const claim: PortClaim = { runId: key.runId, project: key.project, owner: structuredClone(owner), stateDir, port };
    if (key.worker !== undefined) claim.worker = key.worker;
    const rivalsOf = async (mine?: string) =>
      (await this.#list(port)).filter((found) => found.file !== mine && found.claim.stateDir !== stateDir && judgeOwner(found.claim.owner, leaseMs).alive);
    for (let attempt = 1; ; attempt++) {
      const file = join(this.path, `p${port}-${randomBytes(6).toString('hex')}.json`);
      await this.#writeNew(file, claim);
      const rivals = await rivalsOf(file);
      if (rivals.length === 0) return file;
      // Whoever made a rival claim may be withdrawing it just now, as this one does: two allocators
      // that meet on a port both step back, then try again after random delays, so one of them gets it.
      await this.withdraw([file]);
      debug('port %d is claimed at the same time by %s (attempt %d)', port, rivals.map((rival) => rival.claim.stateDir).join(', '), attempt);
      if (attempt === CLAIM_ATTEMPTS) return undefined;
      await sleep(5 + Math.random() * 20 * attempt);
      if ((await rivalsOf()).length > 0) return undefined;
    }
  }

  /** Removes claims made by this process (e.g. when recording them in the ledger failed). */
  async withdraw(files: readonly string[]): Promise<void> {
    for (const file of files) await unlink(file).catch((error: unknown) => debug('could not withdraw %s: %O', file, error));
  }

  /** Removes the claims of the given lanes of one state folder. */
  async drop(stateDir: string, keys: readonly LaneKey[]): Promise<void> {
    for (const found of await this.#list()) {
      if (found.claim.stateDir === stateDir && keys.some((key) => sameLane(found.claim, key))) await this.#remove(found, 'released');
    }
  }

  /** Marks the claims of a run of one state folder as kept (alive until released). */
  async keepRun(stateDir: string, runId: string): Promise<void> {
    for (const found of await this.#list()) {
      if (found.claim.stateDir !== stateDir || found.claim.runId !== runId || found.claim.owner.kept) continue;
      found.claim.owner.kept = true;
      await this.#writeOver(found.file, found.claim);
    }
  }

  /** Gives the claims of a run of one state folder to `owner` (see PortAllocator.handOverRun). */
  async handOverRun(stateDir: string, runId: string, owner: Owner): Promise<void> {
    for (const found of await this.#list()) {
      if (found.claim.stateDir !== stateDir || found.claim.runId !== runId) continue;
      found.claim.owner = { ...owner, runId };
      await this.#writeOver(found.file, found.claim);
    }
  }

  /** Refreshes the heartbeat (the file's mtime) of every claim of `runId` this user made. */
  async touchRun(runId: string): Promise<number> {
    const now = new Date();
    const me = process.getuid?.();
    let touched = 0;
    for (const found of await this.#list()) {
      if (found.claim.runId !== runId || (me !== undefined && found.uid !== me)) continue;
      // utimes never creates: a claim released meanwhile stays released.
      await utimes(found.file, now, now).then(
        () => touched++,
        (error: unknown) => debug('heartbeat of %s failed: %O', found.file, error),
      );
    }
    return touched;
  }

  /** The claims in the folder (of one port, if given); unreadable or foreign files are skipped. */
  async #list(port?: number): Promise<FoundClaim[]> {
    await this.#ensureFolder();
    let names: string[];
    try {
      names = await readdir(this.path);
    } catch (error) {
      if (isFsError(error)) throw unwritable(error, 'list the host-wide port claims in', this.path, SETTING);
      throw error;
    }
    const found: FoundClaim[] = [];
    for (const name of names) {
      const match = CLAIM_NAME.exec(name);
      if (!match || (port !== undefined && Number(match[1]) !== port)) continue;
      const claim = await readClaim(join(this.path, name));
      if (claim) found.push(claim);
    }
    return found;
  }

  async #remove(found: FoundClaim, why: string): Promise<void> {
    try {
      await unlink(found.file);
      debug('removed claim of port %d by %s (%s)', found.claim.port, found.claim.stateDir, why);
    } catch (error) {
      // Another user's claim in the sticky folder: only its creator (or root) may remove it.
      if (!isFsError(error, 'ENOENT', 'EPERM', 'EACCES')) throw error;
    }
  }

  /** Writes a claim under a name nobody else uses: temp file, then rename, so readers never see half a claim. */
  async #writeNew(file: string, claim: PortClaim): Promise<void> {
    const temp = join(dirname(file), `.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await writeFile(temp, `${JSON.stringify(claim)}\n`, { flag: 'wx', mode: 0o644 });
      await rename(temp, file);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      if (isFsError(error)) throw unwritable(error, 'write port claim', file, SETTING);
      throw error;
    }
  }

  /** Replaces one of this user's claims (same name). */
  async #writeOver(file: string, claim: PortClaim): Promise<void> {
    await this.#writeNew(file, claim);
  }

  /** Creates the folder (mode 1777) or checks that this user may write in it; once per object. */
  #ensureFolder(): Promise<void> {
    this.#ready ??= prepareFolder(this.path).catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }
}

/**
 * Makes `dir` usable by every user of the host: created with mode 1777; an existing folder of this
 * user is brought to 1777 (older versions made it 0755); another user's folder must already let
 * everyone write in it.
 */
async function prepareFolder(dir: string): Promise<void> {
  try {
    await mkdir(dirname(dir), { recursive: true });
    await mkdir(dir, { mode: SHARED_MODE });
    await chmod(dir, SHARED_MODE); // mkdir's mode is cut by the umask.
    return;
  } catch (error) {
    if (!isFsError(error, 'EEXIST')) {
      const cause = mkdirCause(error, dir);
      if (isFsError(cause)) throw unwritable(cause, 'create the host-wide folder', dir, SETTING);
      throw cause;
    }
  }
  const stats = await stat(dir).catch((error: unknown) => {
    throw isFsError(error) ? unwritable(error, 'reach the host-wide folder', dir, SETTING) : error;
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
        throw isFsError(error) ? unwritable(error, 'share (chmod 1777) the host-wide folder', dir, SETTING) : error;
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

/** Reads one claim without following links; undefined when it is gone, a link, or not a claim. */
async function readClaim(file: string): Promise<FoundClaim | undefined> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if (!isFsError(error, 'ENOENT', 'ELOOP', 'EACCES')) debug('cannot read claim %s: %O', file, error);
    return undefined;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile() || stats.size > MAX_CLAIM_BYTES) return undefined;
    const raw = JSON.parse(await handle.readFile('utf8')) as Record<string, unknown>;
    const valid =
      typeof raw.runId === 'string' &&
      typeof raw.project === 'string' &&
      typeof raw.stateDir === 'string' &&
      Number.isInteger(raw.port) &&
      (raw.worker === undefined || typeof raw.worker === 'number') &&
      isOwner(raw.owner);
    if (!valid) return undefined;
    const claim = raw as unknown as PortClaim;
    // The creator refreshes the claim by touching the file: the later of the two counts.
    const touched = stats.mtime.toISOString();
    if (!(Date.parse(claim.owner.heartbeatAt) >= stats.mtimeMs)) claim.owner.heartbeatAt = touched;
    return { file, uid: stats.uid, claim };
  } catch (error) {
    debug('skipping claim %s: %O', file, error);
    return undefined;
  } finally {
    await handle.close();
  }
}

/** True when the owner can never come back: its process is gone (this host) or its lease ran out (another host). */
function ownerIsGone(owner: Owner, leaseMs: number): boolean {
  if (owner.kept) return false;
  if (owner.host !== currentHost()) return true;
  return !judgeOwner({ ...owner, heartbeatAt: new Date().toISOString() }, leaseMs).alive;
}
