/**
 * Who a recorded pid is. A pid means something only inside its PID namespace (containers,
 * `unshare --pid`), and only until the machine reboots or the pid is reused. So every owner and
 * every mark records, with the pid, the PID namespace (the inode of `/proc/<pid>/ns/pid`), the
 * kernel start time of the process and the boot id (`/proc/sys/kernel/random/boot_id`), and the one
 * judge below decides by the pid only when all of them match this process's view; otherwise the
 * owner cannot be judged here, and only a lease may decide (a process is never killed for it).
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { procStat } from './proc.js';

/** What makes a pid meaningful: recorded with it wherever an owner or a mark is. */
export interface ProcessIdentity {
  /** Kernel start time of the process (Linux `/proc/<pid>/stat` field 22, clock ticks since boot). */
  pidStart?: number;
  /** The inode of the process's PID namespace (`/proc/<pid>/ns/pid`, Linux). */
  pidNs?: number;
  /** The kernel's boot id (`/proc/sys/kernel/random/boot_id`, Linux). */
  bootId?: string;
}

/** A recorded process: its pid, the identity recorded with it, and its host when known. */
export interface ProcessRecord extends ProcessIdentity {
  pid: number;
  host?: string | undefined;
}

/** What the judge says of a recorded process. */
export type ProcessVerdict =
  | { state: 'alive' }
  /** Provably gone: its pid is gone on this host, or now belongs to another process. */
  | { state: 'gone'; reason: string }
  /** Its pid means nothing here (another host, boot or PID namespace): only a lease may decide. */
  | { state: 'unknown'; reason: string };

let cachedBootId: string | null | undefined;

/** This machine's boot id, or undefined where there is none (not Linux). */
export function currentBootId(): string | undefined {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      cachedBootId = null;
    }
  }
  return cachedBootId ?? undefined;
}

/** The inode of the PID namespace of a process (`pid:[4026531836]` → 4026531836), or undefined where it cannot be read. */
export function pidNamespaceOf(pid: number | 'self'): number | undefined {
  try {
    const inode = Number(/^pid:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/pid`))?.[1]);
    return Number.isSafeInteger(inode) && inode > 0 ? inode : undefined;
  } catch {
    return undefined;
  }
}

/** The identity of a live process of this host as seen from here (what is known of it). */
export function identityOf(pid: number): ProcessIdentity {
  const identity: ProcessIdentity = {};
  const start = procStat(pid)?.startTime;
  if (start !== undefined) identity.pidStart = start;
  // A pid is a number of the namespace it is read in: the recorder's own, whatever namespace the
  // process itself lives in (a child namespace's process has a pid in its parent's too).
  const ns = pidNamespaceOf('self');
  if (ns !== undefined) identity.pidNs = ns;
  const boot = currentBootId();
  if (boot !== undefined) identity.bootId = boot;
  return identity;
}

/**
 * Why the pid of `record` cannot be judged from this process, or undefined when it can: it was
 * recorded in another PID namespace or on another boot. (The host is the caller's to compare.)
 * A record without a namespace or boot id (written by an older version) is judged by its pid.
 */
export function pidNotJudgeable(record: ProcessIdentity): string | undefined {
  const boot = currentBootId();
  if (record.bootId !== undefined && boot !== undefined && record.bootId !== boot) return `recorded on another boot (${record.bootId})`;
  const ns = pidNamespaceOf('self');
  if (record.pidNs !== undefined && ns !== undefined && record.pidNs !== ns) return `in another PID namespace (pid:[${record.pidNs}])`;
  return undefined;
}

/** The environment mark of an owner's identity: `<pid namespace>:<start time>:<boot id>` (empty parts unknown). */
export function formatIdentityMark(identity: ProcessIdentity): string {
  return `${identity.pidNs ?? ''}:${identity.pidStart ?? ''}:${identity.bootId ?? ''}`;
}

/** The identity in an environment mark written by {@link formatIdentityMark} (unknown parts left out). */
export function parseIdentityMark(text: string | undefined): ProcessIdentity {
  const identity: ProcessIdentity = {};
  if (!text) return identity;
  const [ns, start, ...boot] = text.split(':');
  if (ns && /^\d+$/.test(ns)) identity.pidNs = Number(ns);
  if (start && /^\d+$/.test(start)) identity.pidStart = Number(start);
  if (boot.length > 0 && boot.join(':')) identity.bootId = boot.join(':');
  return identity;
}
