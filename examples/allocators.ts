import { DatabaseAllocator, PortAllocator } from 'e2e-lanes';

const ports = PortAllocator.getInstance();
const { backendPort, frontendPort } = await ports.allocatePortsForProject('checkout');

const databases = DatabaseAllocator.getInstance({ migrations: 'prisma/migrations', seed: 'prisma/seed.ts' });
const { databaseUrl } = await databases.allocateDatabaseForProject('checkout');
// … start your servers with those ports and DATABASE_URL …
await databases.releaseRun();
await databases.close();
await ports.releaseRun();
