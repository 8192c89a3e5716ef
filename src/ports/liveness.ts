import { judgeOwner, type LedgerEntry, type OwnerVerdict, type StaleEntry } from '../state/index.js';

/**
 * Splits a ledger's entries into those whose owner is alive and those to reap, as `judgeOwner`
 * judges each entry, but judging each owner process once: a ledger's entries share a few owner
 * processes (a run's lanes all belong to its runner) while each has a heartbeat of its own, and
 * judging a process reads `/proc` several times (hundreds of lanes took milliseconds of every
 * allocation). Only the lease (the heartbeat's age) is checked per entry.
 */
export function splitLive<E extends LedgerEntry>(entries: readonly E[], leaseMs: number, now = Date.now()): { live: E[]; stale: StaleEntry<E>[] } {
  const live: E[] = [];
  const stale: StaleEntry<E>[] = [];
  const processes = new Map<string, OwnerVerdict>();
  const fresh = new Date(now).toISOString();
  for (const entry of entries) {
    const owner = entry.owner;
    const id = [owner.host, owner.pid, owner.pidStart, owner.pidNs, owner.bootId, owner.kept === true, owner.warmUntil ?? ''].join('\0');
    let verdict = processes.get(id);
    if (!verdict) {
      // Everything but the heartbeat: kept, a warm deadline, the process itself.
      verdict = judgeOwner({ ...owner, heartbeatAt: fresh }, leaseMs, now);
      processes.set(id, verdict);
    }
    // Then the lease, as judgeOwner checks it for an owner whose process it cannot judge.
    if (verdict.alive && !owner.kept && owner.warmUntil === undefined) verdict = judgeOwner({ ...owner, host: `${owner.host}\0lease` }, leaseMs, now);
    if (verdict.alive) live.push(entry);
    else stale.push({ entry, reason: verdict.reason });
  }
  return { live, stale };
}
