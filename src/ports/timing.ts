/**
 * Where one allocation's time went, for the `e2e-lanes:ports:trace` debug log: reading the ledger,
 * claiming (listing the claims, creating claim files, probing), and recording (waiting for the
 * ledger's lock or for another process's commit, and the commits themselves).
 * @internal
 */
export interface AllocationTiming {
  /** Milliseconds reading the ledger's snapshot. */
  read: number;
  /** Milliseconds claiming ports (listing, creating claim files, probing). */
  claim: number;
  /** Of `claim`: milliseconds listing the claims folder. */
  list: number;
  /** Of `claim`: milliseconds in bind probes. */
  probe: number;
  /** Ports tried, and of them lost to a claim made at the same moment. */
  tried: number;
  lost: number;
  /** Milliseconds recording the lane (waiting included). */
  record: number;
  /** Of `record`: milliseconds holding the ledger's lock in commits made by this process, and how many. */
  locked: number;
  commits: number;
  /** Requests recorded by this process's commits (its own included). */
  committed: number;
  /** Waits for a file event or a nap before the lane was recorded. */
  waits: number;
  /** Claim rounds (1 unless claims were overtaken). */
  rounds: number;
  /** Milliseconds of CPU (this process, user and system) in each phase. */
  cpu: { read: number; claim: number; record: number };
}

/** Where a phase started: wall clock and CPU. */
export interface Lap {
  at: number;
  cpu: NodeJS.CpuUsage;
}

export function startLap(): Lap {
  return { at: performance.now(), cpu: process.cpuUsage() };
}

/** Adds the time since `lap` to `phase`; returns the start of the next phase. */
export function endLap(timing: AllocationTiming, phase: 'read' | 'claim' | 'record', lap: Lap): Lap {
  const cpu = process.cpuUsage(lap.cpu);
  timing[phase] += performance.now() - lap.at;
  timing.cpu[phase] += (cpu.user + cpu.system) / 1000;
  return startLap();
}

export function newTiming(): AllocationTiming {
  return { read: 0, claim: 0, list: 0, probe: 0, tried: 0, lost: 0, record: 0, locked: 0, commits: 0, committed: 0, waits: 0, rounds: 0, cpu: { read: 0, claim: 0, record: 0 } };
}

export function describeTiming(t: AllocationTiming): string {
  const ms = (value: number): string => value.toFixed(1);
  return (
    `total ${ms(t.read + t.claim + t.record)} ms: read ${ms(t.read)}, claim ${ms(t.claim)} (list ${ms(t.list)}, probe ${ms(t.probe)}, ` +
    `${t.tried} tried, ${t.lost} lost), record ${ms(t.record)} (locked ${ms(t.locked)} in ${t.commits} commits of ${t.committed} requests, ${t.waits} waits), rounds ${t.rounds}; ` +
    `cpu read ${ms(t.cpu.read)}, claim ${ms(t.cpu.claim)}, record ${ms(t.cpu.record)}`
  );
}
