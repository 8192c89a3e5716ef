import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { createPrismaClient } from '../demo/db.ts';
import { SEED_COMMENTS, SEED_POSTS, SEED_USERS } from './seed-data.ts';

/**
 * Inserts the baseline of prisma/seed-data.ts into a freshly migrated database, in one
 * transaction and in declaration order (so ids are 1..n on a fresh database).
 * Fails on a database that already holds the seed (unique e-mail).
 */
export default async function seed({ databaseUrl }: { databaseUrl: string }): Promise<void> {
  const prisma = createPrismaClient(databaseUrl, { maxConnections: 1 });
  try {
    await prisma.$transaction(async (tx) => {
      const userIds = new Map<string, number>();
      for (const user of SEED_USERS) {
        const created = await tx.user.create({ data: user });
        userIds.set(user.email, created.id);
      }
      const idOf = (email: string): number => {
        const id = userIds.get(email);
        if (id === undefined) throw new Error(`seed-data: unknown user ${email}`);
        return id;
      };
      const postIds = new Map<string, number>();
      for (const { authorEmail, ...post } of SEED_POSTS) {
        const created = await tx.post.create({ data: { ...post, authorId: idOf(authorEmail) } });
        postIds.set(post.title, created.id);
      }
      for (const comment of SEED_COMMENTS) {
        const postId = postIds.get(comment.postTitle);
        if (postId === undefined) throw new Error(`seed-data: unknown post ${comment.postTitle}`);
        await tx.comment.create({
          data: { body: comment.body, postId, authorId: idOf(comment.authorEmail) },
        });
      }
    });
  } finally {
    await prisma.$disconnect();
  }
}

/** True when this file is the process entry point (`node --import tsx prisma/seed.ts`), not imported. */
function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  const databaseUrl = process.env['DATABASE_URL'];
  if (!databaseUrl) {
    console.error('seed: DATABASE_URL is not set');
    process.exit(1);
  }
  seed({ databaseUrl }).then(
    () => console.log('seed: done'),
    (error: unknown) => {
      console.error(`seed: failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
