import { expect, test } from 'e2e-lanes/playwright';

test('lists the seeded posts of this lane', async ({ page, lane }) => {
  await page.goto('/'); // baseURL is the lane's frontend
  await expect(page.getByTestId('lane-database')).toHaveText(lane.databaseName!);
  await expect(page.getByTestId('post-item')).toHaveCount(3);
});
