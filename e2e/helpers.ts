import type { APIRequestContext } from '@playwright/test';
import { SEED_POSTS, SEED_USERS } from '../prisma/seed-data.ts';

export interface Post {
  id: number;
  title: string;
  authorEmail: string;
}

/** A title only this project writes, so a test can tell its project's rows from anyone else's. */
export function ownTitle(project: string, what: string): string {
  return `[${project}] ${what} ${Math.random().toString(36).slice(2, 8)}`;
}

export async function listPosts(request: APIRequestContext, backend: string): Promise<Post[]> {
  const response = await request.get(`${backend}/api/posts`);
  if (!response.ok()) throw new Error(`GET /api/posts answered ${response.status()}`);
  return (await response.json()) as Post[];
}

/** Posts that are neither seed rows nor written by `project`: must always be empty. */
export function foreignPosts(posts: Post[], project: string): Post[] {
  const seed = new Set(SEED_POSTS.map((post) => post.title));
  return posts.filter((post) => !seed.has(post.title) && !post.title.startsWith(`[${project}] `));
}

export { SEED_POSTS, SEED_USERS };
