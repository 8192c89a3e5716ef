import { randomBytes } from 'node:crypto';
import { constants, linkSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, rename, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import lockfile from 'proper-lockfile';
import { debugLogger } from '../log.js';
import { isFsError, unwritable } from '../state/fs-errors.js';
import { currentHost, judgeOwner, sameLane, type LaneKey, type LedgerEntry, type Owner, type Refreshable } from '../state/index.js';
import { isOwner } from '../state/owner.js';
import { HOST_FOLDER_SETTING, hostStateDir, prepareFolder } from './host-folder.js';

export { hostStateDir } from './host-folder.js';

const debug = debugLogger('ports');

/**
 * Host-wide claims: which lane holds which port, across every state folder and user of the host.
 * They are what keeps two allocators from handing out one port: one file per port,
 * `p<port>.json`, created with `link()` (which fails when the name exists, like `O_EXCL`), so of
 * any number of processes claiming one port at once exactly one succeeds, without any lock. The
 * state folder's `allocated-ports.json` then only records what its lanes hold.
 *
 * A claim whose owner is dead (or whose lease ran out) holds nothing: the next allocator that wants
 * its port removes it and claims the port. Removing a claim (taking it over, releasing it) is done
 * under a lock of that one port (`p<port>.json.lock`), after reading the claim again and checking it
 * is still the one judged: so a remover never removes a claim made meanwhile by someone else.
 *
 * The folder is shared by every user of the host, like `/tmp`: mode 1777 (world-writable, sticky).
 * The sticky bit lets only a claim's creator (or root) remove it: another user's claim whose owner
 * died keeps its port until that user's next run reaps it.
 */
export interface PortClaim extends LedgerEntry {
  /** The state folder whose ledger holds the lane. */
  stateDir: string;
  port: number;
  /** Random, per claim: tells a claim from a later claim of the same port. */
  id: string;
}

/**
 * Why a port could not be claimed: a live claim of this state folder, of another (or something
 * unreadable), or (when it was tried as unclaimed) a claim made at the same moment by someone else.
 */
export type ClaimRefusal = 'this-folder' | 'other-folder' | 'contended';

const CLAIM_NAME = /^p(\d{1,5})\.json$/;
/** A claim is a few hundred bytes (the project name is at most 512 characters); anything bigger is not one. */
const MAX_CLAIM_BYTES = 16_384;
/** How often one port is tried when its claim changes under our feet (taken over, released). */
const CLAIM_ATTEMPTS = 3;

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

  /** The file of the claim of `port`. */
  fileOf(port: number): string {
    return join(this.path, `p${port}.json`);
  }

  /**
   * Claims `port` for a lane of `stateDir`: resolves the claim, or who holds the port when a live
   * claim is there. A dead owner's claim is removed and the port claimed. With `unclaimed` (the port
   * had no claim file at the caller's last listing) the claim is only tried, never read.
   * @throws {LanesError} `STATE_UNWRITABLE` when the claim cannot be written.
   */
  async claim(port: number, stateDir: string, key: LaneKey, owner: Owner, leaseMs: number, options: { unclaimed?: boolean } = {}): Promise<PortClaim | ClaimRefusal> {
    await this.#ensureFolder();
    const file = this.fileOf(port);
    const claim: PortClaim = { runId: key.runId, project: key.project, owner: structuredClone(owner), stateDir, port, id: randomBytes(6).toString('hex') };
    if (key.worker !== undefined) claim.worker = key.worker;
    // A port without a claim a moment ago: try at once; a claim there now was made just now by someone alive.
    if (options.unclaimed) return (await this.#create(file, claim)) ? claim : 'contended';
    for (let attempt = 1; attempt <= CLAIM_ATTEMPTS; attempt++) {
      // Looking first is cheaper than creating first: most ports an allocator meets are claimed.
      const found = await readClaim(file);
      if (found === 'missing') {
        if (await this.#create(file, claim)) return claim;
        continue; // claimed between our look and our try: look again
      }
      if (found === 'unreadable') return 'other-folder';
      const verdict = judgeOwner(found.claim.owner, leaseMs);
      if (verdict.alive) return found.claim.stateDir === stateDir ? 'this-folder' : 'other-folder';
      debug('port %d: taking over the claim of %s (%s)', port, found.claim.stateDir, verdict.reason);
      // Another user's claim in the sticky folder cannot be removed by us: the port stays theirs.
      if ((await this.#removeIf(port, (current) => current.id === found.claim.id && !judgeOwner(current.owner, leaseMs).alive)) === 'refused') return 'other-folder';
    }
    return 'this-folder';
  }

  /** Removes claims made by this process that were not recorded (e.g. the ledger could not be written). */
  async withdraw(claims: readonly PortClaim[]): Promise<void> {
    if (claims.length === 0) return;
    for (const claim of claims) await this.#removeIf(claim.port, (current) => current.id === claim.id);
  }

  /** Removes the claims of the given lanes (with their ports) of one state folder. */
  async drop(stateDir: string, lanes: readonly (LaneKey & { ports: Record<string, number> })[]): Promise<void> {
    for (const lane of lanes) {
      for (const port of Object.values(lane.ports)) {
        await this.#removeIf(port, (current) => current.stateDir === stateDir && sameLane(current, lane)).catch((error: unknown) => {
          debug('could not drop the claim of port %d: %O', port, error);
        });
      }
    }
  }

  /** Marks the claims of a run of one state folder as kept (alive until released). */
  async keepRun(stateDir: string, runId: string): Promise<void> {
    await this.#rewriteRun(stateDir, runId, (claim) => {
      if (claim.owner.kept) return false;
      claim.owner.kept = true;
      return true;
    });
  }

  /** Gives the claims of a run of one state folder to `owner` (see PortAllocator.handOverRun). */
  async handOverRun(stateDir: string, runId: string, owner: Owner): Promise<void> {
    await this.#rewriteRun(stateDir, runId, (claim) => {
      claim.owner = { ...owner, runId };
      return true;
    });
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

  /**
   * Refreshes the heartbeat (the file's mtime) of the claims of the given ports that this user made
   * for `runId` of `stateDir`: one file per port, not the whole folder.
   */
  async touchPorts(stateDir: string, runId: string, ports: Iterable<number>): Promise<number> {
    const now = new Date();
    const me = process.getuid?.();
    let touched = 0;
    for (const port of ports) {
      const found = await readClaim(this.fileOf(port));
      if (typeof found === 'string' || found.claim.stateDir !== stateDir || found.claim.runId !== runId || (me !== undefined && found.uid !== me)) continue;
      await utimes(found.file, now, now).then(
        () => touched++,
        (error: unknown) => debug('heartbeat of %s failed: %O', found.file, error),
      );
    }
    return touched;
  }

  /** Removes (where this user may) the claims whose owner is dead or whose lease ran out; returns their ports. */
  async prune(leaseMs: number): Promise<number[]> {
    const pruned: number[] = [];
    for (const found of await this.#list()) {
      if (judgeOwner(found.claim.owner, leaseMs).alive || !ownerIsGone(found.claim.owner, leaseMs)) continue;
      const removed = await this.#removeIf(found.claim.port, (current) => current.id === found.claim.id && !judgeOwner(current.owner, leaseMs).alive);
      if (removed === 'removed') pruned.push(found.claim.port);
    }
    return pruned;
  }

  /**
   * The ports that have a claim file right now, from one listing of the folder (no file is read):
   * an allocator tries the ports without one first, and looks into a claim only when it runs short.
   */
  async claimedPorts(): Promise<Set<number>> {
    const names = await this.#names();
    const ports = new Set<number>();
    for (const name of names) {
      const match = CLAIM_NAME.exec(name);
      if (match) ports.add(Number(match[1]));
    }
    return ports;
  }

  /** Every readable claim in the folder. */
  async list(): Promise<PortClaim[]> {
    return (await this.#list()).map((found) => found.claim);
  }

  /**
   * Creates the claim's file if no file has its name: temp file, then `link()`, so readers never see
   * half a claim. Synchronous calls: four system calls of microseconds each on a local folder, where
   * handing each to the thread pool and back costs more than the call itself, and costs most when
   * many processes allocate at once and every hand-off waits for a CPU.
   */
  async #create(file: string, claim: PortClaim): Promise<boolean> {
    const temp = join(this.path, `.${randomBytes(6).toString('hex')}.tmp`);
    try {
      writeFileSync(temp, `${JSON.stringify(claim)}\n`, { flag: 'wx', mode: 0o644 });
      linkSync(temp, file);
      return true;
    } catch (error) {
      if (isFsError(error, 'EEXIST')) return false;
      if (isFsError(error)) throw unwritable(error, 'write port claim', file, HOST_FOLDER_SETTING);
      throw error;
    } finally {
      try {
        unlinkSync(temp);
      } catch {
        // never created (the folder is not writable), or gone already
      }
    }
  }

  /**
   * Under the lock of `port`, reads its claim again and removes it if `still` holds for it. Resolves
   * `refused` when this user may not remove it (another user's claim) or the lock stays taken.
   */
  async #removeIf(port: number, still: (claim: PortClaim) => boolean): Promise<'removed' | 'kept' | 'refused'> {
    return this.#underPortLock(port, async (file) => {
      const found = await readClaim(file);
      if (typeof found === 'string' || !still(found.claim)) return 'kept';
      try {
        await unlink(file);
        debug('removed claim of port %d by %s', port, found.claim.stateDir);
        return 'removed';
      } catch (error) {
        if (isFsError(error, 'ENOENT')) return 'kept';
        if (isFsError(error, 'EPERM', 'EACCES')) return 'refused';
        throw error;
      }
    });
  }

  /** Rewrites, under each port's lock, the claims of a run of one state folder that `change` changes. */
  async #rewriteRun(stateDir: string, runId: string, change: (claim: PortClaim) => boolean): Promise<void> {
    for (const listed of await this.#list()) {
      if (listed.claim.stateDir !== stateDir || listed.claim.runId !== runId) continue;
      await this.#underPortLock(listed.claim.port, async (file) => {
        const found = await readClaim(file);
        if (typeof found === 'string' || found.claim.id !== listed.claim.id || !change(found.claim)) return;
        const temp = join(this.path, `.${randomBytes(6).toString('hex')}.tmp`);
        try {
          await writeFile(temp, `${JSON.stringify(found.claim)}\n`, { flag: 'wx', mode: 0o644 });
          await rename(temp, file);
        } catch (error) {
          await unlink(temp).catch(() => undefined);
          if (isFsError(error)) throw unwritable(error, 'write port claim', file, HOST_FOLDER_SETTING);
          throw error;
        }
      });
    }
  }

  /** Runs `fn` holding the lock of one port's claim (held for a read and an unlink or rename). */
  async #underPortLock<R>(port: number, fn: (file: string) => Promise<R>): Promise<R | 'refused'> {
    await this.#ensureFolder();
    const file = this.fileOf(port);
    let release: (() => Promise<void>) | undefined;
    for (let attempt = 1; attempt <= 60 && !release; attempt++) {
      try {
        release = await lockfile.lock(file, { realpath: false, stale: 10_000, onCompromised: (error) => debug('lock of port %d compromised: %O', port, error) });
      } catch (error) {
        if (isFsError(error, 'EPERM', 'EACCES')) return 'refused';
        if (isFsError(error)) throw unwritable(error, 'lock port claim', `${file}.lock`, HOST_FOLDER_SETTING);
        if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
        await sleep(2 + Math.random() * Math.min(50, 2 * attempt));
      }
    }
    if (!release) return 'refused';
    try {
      return await fn(file);
    } finally {
      await release().catch((error: unknown) => debug('releasing the lock of port %d failed: %O', port, error));
    }
  }

  /** The names of the files in the folder (created first if need be), as one listing. */
  async #names(): Promise<string[]> {
    await this.#ensureFolder();
    try {
      // Synchronous, like creating a claim (see #create): one call, made once per allocation.
      return readdirSync(this.path);
    } catch (error) {
      if (isFsError(error)) throw unwritable(error, 'list the host-wide port claims in', this.path, HOST_FOLDER_SETTING);
      throw error;
    }
  }

  /** The claims in the folder; unreadable or foreign files are skipped. */
  async #list(): Promise<FoundClaim[]> {
    const names = await this.#names();
    const found: FoundClaim[] = [];
    for (const name of names) {
      if (!CLAIM_NAME.test(name)) continue;
      const claim = await readClaim(join(this.path, name));
      if (typeof claim !== 'string') found.push(claim);
    }
    return found;
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

/** Reads one claim without following links: `missing` when it is gone, `unreadable` when it is a link or not a claim. */
async function readClaim(file: string): Promise<FoundClaim | 'missing' | 'unreadable'> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if (isFsError(error, 'ENOENT')) return 'missing';
    debug('cannot read claim %s: %O', file, error);
    return 'unreadable';
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile() || stats.size > MAX_CLAIM_BYTES) return 'unreadable';
    const raw = JSON.parse(await handle.readFile('utf8')) as Record<string, unknown>;
    const valid =
      typeof raw.runId === 'string' &&
      typeof raw.project === 'string' &&
      typeof raw.stateDir === 'string' &&
      typeof raw.id === 'string' &&
      Number.isInteger(raw.port) &&
      `p${String(raw.port)}.json` === file.slice(file.lastIndexOf('/') + 1) &&
      (raw.worker === undefined || typeof raw.worker === 'number') &&
      isOwner(raw.owner);
    if (!valid) return 'unreadable';
    const claim = raw as unknown as PortClaim;
    // The creator refreshes the claim by touching the file: the later of the two counts.
    if (!(Date.parse(claim.owner.heartbeatAt) >= stats.mtimeMs)) claim.owner.heartbeatAt = stats.mtime.toISOString();
    return { file, uid: stats.uid, claim };
  } catch (error) {
    debug('skipping claim %s: %O', file, error);
    return 'unreadable';
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
