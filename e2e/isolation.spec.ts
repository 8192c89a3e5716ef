import { expect, test } from 'e2e-lanes/playwright';
import { foreignPosts, listPosts, ownTitle, SEED_POSTS, SEED_USERS } from './helpers.ts';

test.describe('each project works in its own lane', () => {
  test('starts from exactly the seed and sees only its own writes through the API', async ({ request, lane }, testInfo) => {
    const project = testInfo.project.name;
    const backend = lane.urls.backend!;
    const before = await listPosts(request, backend);
    for (const seed of SEED_POSTS) expect(before.map((post) => post.title)).toContain(seed.title);
    expect(foreignPosts(before, project)).toEqual([]);

    const title = ownTitle(project, 'api post');
    const created = await request.post(`${backend}/api/posts`, {
      data: { title, body: 'written through the API', authorEmail: SEED_USERS[0]!.email },
    });
    expect(created.status()).toBe(201);

    const after = await listPosts(request, backend);
    expect(after.map((post) => post.title)).toContain(title);
    expect(foreignPosts(after, project)).toEqual([]);
  });

  test('creates a post in the browser and lists seed plus own posts only', async ({ page, lane }, testInfo) => {
    const project = testInfo.project.name;
    const title = ownTitle(project, 'browser post');
    await page.goto('/');
    await expect(page.getByTestId('lane-database')).toHaveText(lane.databaseName!);
    await expect(page.getByTestId('post-item').first()).toBeVisible();

    await page.getByTestId('new-post-title').fill(title);
    await page.getByTestId('new-post-body').fill('written in the browser');
    await page.getByTestId('new-post-author').selectOption(SEED_USERS[1]!.email);
    await page.getByTestId('new-post-submit').click();
    await expect(page.getByTestId('post-list')).toContainText(title);

    const titles = await page.getByTestId('post-item').allInnerTexts();
    for (const seed of SEED_POSTS) expect(titles.some((text) => text.includes(seed.title))).toBe(true);
    const strangers = titles.filter((text) => !SEED_POSTS.some((seed) => text.includes(seed.title)) && !text.includes(`[${project}] `));
    expect(strangers).toEqual([]);
  });

  test('never sees rows another project wrote at the same time', async ({ request, lane }, testInfo) => {
    const project = testInfo.project.name;
    const backend = lane.urls.backend!;
    for (let i = 0; i < 5; i++) {
      const response = await request.post(`${backend}/api/posts`, {
        data: { title: ownTitle(project, `burst ${i}`), body: 'burst', authorEmail: SEED_USERS[0]!.email },
      });
      expect(response.status()).toBe(201);
    }
    const posts = await listPosts(request, backend);
    expect(foreignPosts(posts, project)).toEqual([]);
    expect(posts.filter((post) => post.title.startsWith(`[${project}] burst`)).length).toBeGreaterThanOrEqual(5);
  });
});
