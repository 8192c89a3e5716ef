import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client.ts';

export type { PrismaClient };

export interface DbOptions {
  /** Largest number of pooled connections (default 5). */
  maxConnections?: number;
}

/** A Prisma client talking to `databaseUrl` through node-postgres (`@prisma/adapter-pg`). */
export function createPrismaClient(databaseUrl: string, options: DbOptions = {}): PrismaClient {
  const adapter = new PrismaPg({
    connectionString: databaseUrl,
    max: options.maxConnections ?? 5,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 10_000,
  });
  return new PrismaClient({ adapter });
}
