import pg from 'pg';

/**
 * The app's connection pool, created when the module is imported, from `DATABASE_URL`: in the
 * tests that is the Vitest worker's own database. The `'error'` listener lets the pool survive a
 * session ended by a reset (it reconnects on the next query).
 */
export const pool = new pg.Pool({ connectionString: process.env['DATABASE_URL'], max: 3 });
pool.on('error', () => undefined);
