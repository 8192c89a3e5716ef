/** The two ways to reset a lane's data (see reset.ts and truncate-reset.ts). */
export type ResetStrategy = 'swap' | 'truncate';

/** The reset strategies, for option checks. */
export const RESET_STRATEGIES: readonly ResetStrategy[] = ['swap', 'truncate'];
