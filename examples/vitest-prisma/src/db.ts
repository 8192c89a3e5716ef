import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.ts';

/**
 * The service's Prisma client, created when the module is imported, from `DATABASE_URL`: in the
 * tests that is the Vitest worker's own database (e2e-lanes sets it before test files load). Prisma
 * 7 talks to PostgreSQL through node-postgres (`@prisma/adapter-pg`); after a reset ends its
 * sessions, it reconnects on the next query.
 */
export const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.env['DATABASE_URL'], max: 3 }) });
