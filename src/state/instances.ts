/**
 * The singleton of a state folder: the instance already made for `stateDir` (after `check` confirms
 * the caller's options agree with it), else a new one from `create`, remembered in `instances`.
 */
export function instanceFor<T>(instances: Map<string, T>, stateDir: string, create: () => T, check: (existing: T) => void): T {
  const existing = instances.get(stateDir);
  if (existing) {
    check(existing);
    return existing;
  }
  const created = create();
  instances.set(stateDir, created);
  return created;
}
