// Prisma 7 CLI configuration of the example app (`npx prisma generate --config examples/vite-prisma/prisma.config.ts`).
// Prisma 7 no longer loads .env by itself: an app that wants `prisma migrate dev` against the
// database of .env adds `import 'dotenv/config'` here.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: {
    path: 'prisma/migrations',
    seed: 'node --import tsx prisma/seed.ts',
  },
  datasource: {
    url: process.env['DATABASE_URL'],
  },
});
