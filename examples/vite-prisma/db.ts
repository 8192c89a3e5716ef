import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client.ts';

export type { PrismaClient };

/** The app's Prisma client: Prisma 7 talks to PostgreSQL through node-postgres (`@prisma/adapter-pg`). */
export function createPrismaClient(databaseUrl: string | undefined = process.env['DATABASE_URL']): PrismaClient {
  if (!databaseUrl) throw new Error('DATABASE_URL is not set');
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl, max: 5, connectionTimeoutMillis: 5_000 }) });
}
