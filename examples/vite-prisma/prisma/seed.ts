import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { createPrismaClient } from '../db.ts';
import { SEED_LISTS, SEED_TASKS } from './seed-data.ts';

/**
 * Inserts the rows of seed-data.ts into a freshly migrated database. e2e-lanes calls the default
 * export once per template; `npx prisma db seed` (prisma.config.ts) runs this file as a script.
 */
export default async function seed({ databaseUrl }: { databaseUrl: string }): Promise<void> {
  const prisma = createPrismaClient(databaseUrl);
  try {
    await prisma.$transaction(async (tx) => {
      for (const name of SEED_LISTS) {
        const list = await tx.list.create({ data: { name } });
        for (const task of SEED_TASKS.filter((task) => task.list === name)) {
          await tx.task.create({ data: { title: task.title, listId: list.id } });
        }
      }
    });
  } finally {
    await prisma.$disconnect();
  }
}

const entry = process.argv[1];
if (entry && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  await seed({ databaseUrl: process.env['DATABASE_URL'] ?? '' });
}
