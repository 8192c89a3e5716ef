import { expect, test } from 'e2e-lanes/playwright';
import { foreignPosts, listPosts, ownTitle, SEED_POSTS, SEED_USERS } from './helpers.ts';

// These tests run in the `per-worker` project: every worker gets a lane of its own.
test.describe.configure({ mode: 'parallel' });

for (let i = 1; i <= 6; i++) {
  test(`worker lane ${i} holds only the seed and this worker's rows`, async ({ request, lane }, testInfo) => {
    const tag = `w${testInfo.parallelIndex}`;
    expect(lane.worker).toBe(testInfo.parallelIndex);
    expect(lane.databaseName).toMatch(new RegExp(`_w${testInfo.parallelIndex}$`));

    const backend = lane.urls.backend!;
    const response = await request.post(`${backend}/api/posts`, {
      data: { title: ownTitle(tag, `post ${i}`), body: 'per-worker lane', authorEmail: SEED_USERS[0]!.email },
    });
    expect(response.status()).toBe(201);

    const posts = await listPosts(request, backend);
    for (const seed of SEED_POSTS) expect(posts.map((post) => post.title)).toContain(seed.title);
    expect(foreignPosts(posts, tag)).toEqual([]);
  });
}
