// Generates the demo's Prisma client offline. `prisma generate` needs no schema engine, but Prisma
// tries to download one unless PRISMA_SCHEMA_ENGINE_BINARY names an existing file (and still exits
// 0 when the download fails), so this checks the output itself.
import { existsSync } from 'node:fs';
import { execa } from 'execa';

const client = 'demo/generated/prisma/client.ts';
await execa('npx', ['prisma', 'generate'], {
  stdio: 'inherit',
  env: { PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath, PRISMA_HIDE_UPDATE_MESSAGE: '1' },
});
if (!existsSync(client)) {
  console.error(`prisma generate did not write ${client}; see its output above.`);
  process.exit(1);
}
