import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ledgerSpec, StateFile, splitByLiveness, type LaneKey, type LedgerDocument, type LedgerEntry, type Owner } from '../state/index.js';

/**
 * Host-wide claims: which state folder holds which port. Each state folder has its own
 * `allocated-ports.json`, so two suites with different state folders (two repositories, two
 * worktrees) would otherwise only be kept apart by the bind probe, which races with a server that
 * has not bound its port yet. Every allocator on the host records its ports here too and skips
 * ports that a live owner of another state folder claimed.
 */
export interface PortClaim extends LedgerEntry {
  /** The state folder whose ledger holds the lane. */
  stateDir: string;
  ports: number[];
}

export const HOST_STATE_DIR_ENV = 'E2E_LANES_HOST_STATE_DIR';

/** The host-wide folder: `E2E_LANES_HOST_STATE_DIR`, else `<tmp>/e2e-lanes`. */
export function hostStateDir(): string {
  return resolve(process.env[HOST_STATE_DIR_ENV] || join(tmpdir(), 'e2e-lanes'));
}

const claimsSpec = ledgerSpec<PortClaim>('e2e-lanes/port-claims', (raw) => {
  if (typeof raw.stateDir !== 'string' || !Array.isArray(raw.ports)) throw new Error('a claim lacks "stateDir" or "ports"');
  return raw as unknown as PortClaim;
});

/** The claims file of this host. */
export function hostClaims(): StateFile<LedgerDocument<PortClaim>> {
  return new StateFile(join(hostStateDir(), 'port-claims.json'), claimsSpec);
}

/** Ports claimed by live owners of other state folders; prunes dead claims from `doc`. */
export function foreignClaims(doc: LedgerDocument<PortClaim>, stateDir: string, leaseMs: number): Set<number> {
  doc.entries = splitByLiveness(doc.entries, leaseMs).live;
  return new Set(doc.entries.filter((claim) => claim.stateDir !== stateDir).flatMap((claim) => claim.ports));
}

/** Records (or replaces) the claim of one lane. */
export function putClaim(doc: LedgerDocument<PortClaim>, stateDir: string, key: LaneKey, owner: Owner, ports: number[]): void {
  doc.entries = doc.entries.filter((claim) => !isClaimOf(claim, stateDir, key));
  const claim: PortClaim = { runId: key.runId, project: key.project, owner: structuredClone(owner), stateDir, ports };
  if (key.worker !== undefined) claim.worker = key.worker;
  doc.entries.push(claim);
}

/** Removes the claims of the given lanes of one state folder. */
export function dropClaims(doc: LedgerDocument<PortClaim>, stateDir: string, keys: readonly LaneKey[]): void {
  doc.entries = doc.entries.filter((claim) => !keys.some((key) => isClaimOf(claim, stateDir, key)));
}

function isClaimOf(claim: PortClaim, stateDir: string, key: LaneKey): boolean {
  return claim.stateDir === stateDir && claim.runId === key.runId && claim.project === key.project && claim.worker === key.worker;
}
