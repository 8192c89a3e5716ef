/** The process of a warm run's watchdog (see watchdog.ts), started detached by {@link spawnWatchdog}. */
import { runWatchdog, type spawnWatchdog } from './watchdog.js';

runWatchdog().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.log(`${new Date().toISOString()} [e2e-lanes watchdog ${process.pid}] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
