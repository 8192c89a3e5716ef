// Generates the Prisma clients of the demo, examples/vite-prisma and examples/vitest-prisma offline. `prisma generate`
// needs no schema engine, but Prisma tries to download one unless PRISMA_SCHEMA_ENGINE_BINARY names
// an existing file (and still exits 0 when the download fails), so this checks the output itself.
import { existsSync } from 'node:fs';
import { execa } from 'execa';

const clients = [
  { config: 'prisma.config.ts', client: 'demo/generated/prisma/client.ts' },
  { config: 'examples/vite-prisma/prisma.config.ts', client: 'examples/vite-prisma/generated/prisma/client.ts' },
  { config: 'examples/vitest-prisma/prisma.config.ts', client: 'examples/vitest-prisma/generated/prisma/client.ts' },
];
for (const { config, client } of clients) {
  await execa('npx', ['prisma', 'generate', '--config', config], {
    stdio: 'inherit',
    env: { PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath, PRISMA_HIDE_UPDATE_MESSAGE: '1' },
  });
  if (!existsSync(client)) {
    console.error(`prisma generate did not write ${client}; see its output above.`);
    process.exit(1);
  }
}
