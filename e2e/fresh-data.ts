import { expect, test } from 'e2e-lanes/playwright';
import { listPosts, ownTitle, SEED_POSTS, SEED_USERS } from './helpers.ts';

/**
 * Tests that would break each other without a reset of the lane's data: they run one after another
 * in one lane (the `fresh` project, repeated), each writes rows and then asserts the EXACT set
 * "seed + its own rows", through the API and in the browser. `strategy` is the reset strategy.
 */
export function freshDataTests(strategy: 'swap' | 'truncate'): void {
  test.use({ laneResetStrategy: strategy });
  test.describe.configure({ mode: 'serial' });

  for (const name of ['first', 'second']) {
    test(`${strategy}: the ${name} test sees exactly the seed and its own rows`, async ({ page, request, lane }) => {
      const backend = lane.urls.backend!;
      const seedTitles = SEED_POSTS.map((post) => post.title).sort();
      expect((await listPosts(request, backend)).map((post) => post.title).sort()).toEqual(seedTitles);
      expect((await (await request.get(`${backend}/api/users`)).json()).map((user: { email: string }) => user.email).sort()).toEqual(SEED_USERS.map((user) => user.email).sort());

      const mine = [ownTitle(strategy, `${name} api 1`), ownTitle(strategy, `${name} api 2`)];
      for (const title of mine) {
        const created = await request.post(`${backend}/api/posts`, { data: { title, body: 'fresh data', authorEmail: SEED_USERS[0]!.email } });
        expect(created.status()).toBe(201);
      }
      const browserTitle = ownTitle(strategy, `${name} browser`);
      await page.goto('/');
      await page.getByTestId('new-post-title').fill(browserTitle);
      await page.getByTestId('new-post-body').fill('written in the browser');
      await page.getByTestId('new-post-author').selectOption(SEED_USERS[1]!.email);
      await page.getByTestId('new-post-submit').click();
      await expect(page.getByTestId('post-list')).toContainText(browserTitle);

      const expected = [...seedTitles, ...mine, browserTitle].sort();
      expect((await listPosts(request, backend)).map((post) => post.title).sort()).toEqual(expected);
      const shown = await page.getByTestId('post-item').allInnerTexts();
      expect(shown.length).toBe(expected.length);
      for (const title of expected) expect(shown.some((text) => text.includes(title))).toBe(true);
      // The ids start where the seed's end: the sequences were reset too.
      const ids = (await listPosts(request, backend)).map((post) => post.id).sort((a, b) => a - b);
      expect(ids).toEqual(Array.from({ length: expected.length }, (_, index) => index + 1));
    });
  }
}
