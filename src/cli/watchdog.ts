/**
 * The watchdog of a warm run as a command-line entry: the process lives in
 * `lanes/reuse/watchdog-process.ts` (its work in `lanes/reuse/watchdog.ts`); this file starts it
 * the same way, with its settings in `E2E_LANES_WATCHDOG`.
 */
import '../lanes/reuse/watchdog-process.js';
