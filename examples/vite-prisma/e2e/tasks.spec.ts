import { expect, test } from 'e2e-lanes/playwright';
import { createPrismaClient } from '../db.ts';
import { SEED_TASKS } from '../prisma/seed-data.ts';

// The app's own Prisma client, created when this file loads, as specs usually do: DATABASE_URL
// already names this worker's lane (not the app_dev database of .env).
const prisma = createPrismaClient(process.env.DATABASE_URL);
test.afterAll(() => prisma.$disconnect());

const seedTitles = SEED_TASKS.map((task) => task.title);

test('the page shows the lane database, not the one .env names', async ({ page, lane }) => {
  await page.goto('/');
  await expect(page.getByTestId('title')).toHaveText('Tasks'); // VITE_APP_TITLE: Vite did load .env
  await expect(page.getByTestId('database')).toHaveText(lane.databaseName!);
  await expect(page.getByTestId('task-title')).toHaveText(seedTitles);
});

test('a test may delete every task', async ({ page }) => {
  await prisma.task.deleteMany();
  await page.goto('/');
  await expect(page.getByTestId('database')).not.toHaveText('…');
  await expect(page.getByTestId('task')).toHaveCount(0);
});

test('a task inserted with Prisma shows up, after exactly the seed', async ({ page }) => {
  const home = await prisma.list.findUniqueOrThrow({ where: { name: 'Home' } });
  const task = await prisma.task.create({ data: { title: 'Water the plants', listId: home.id } });
  expect(task.id).toBe(SEED_TASKS.length + 1); // the sequences start again too
  await page.goto('/');
  await expect(page.getByTestId('task-title')).toHaveText([...seedTitles, 'Water the plants']);
});

test('a task marked done in the browser is saved in the lane database', async ({ page }) => {
  await page.goto('/');
  await page.getByRole('button', { name: `Done: ${seedTitles[0]}` }).click();
  await expect(page.getByTestId('task').first()).toContainText('✓ done');
  expect(await prisma.task.count({ where: { doneAt: { not: null } } })).toBe(1);
});
