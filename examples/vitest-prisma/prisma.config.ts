// Prisma 7 CLI configuration of the notes service (`npx prisma generate --config examples/vitest-prisma/prisma.config.ts`).
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env['DATABASE_URL'] },
});
