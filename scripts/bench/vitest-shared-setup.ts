/** The shared way, per test file: DATABASE_URL before the app's modules load; TRUNCATE + seed before each test. */
import { beforeEach, inject } from 'vitest';
import { resetShared } from './vitest-shared-shim.ts';

process.env['DATABASE_URL'] = inject('sharedDatabaseUrl');

beforeEach(() => resetShared());
