/**
 * The baseline every lane database starts with (inserted by prisma/seed.ts, in this order).
 * Tests assert "exactly the seed plus my own writes" against these constants.
 */
export interface SeedUser {
  readonly email: string;
  readonly name: string;
}

export interface SeedPost {
  readonly title: string;
  readonly body: string;
  readonly published: boolean;
  readonly authorEmail: string;
}

export interface SeedComment {
  readonly postTitle: string;
  readonly authorEmail: string;
  readonly body: string;
}

export const SEED_USERS: readonly SeedUser[] = [
  { email: 'alice@example.test', name: 'Alice Archer' },
  { email: 'bob@example.test', name: 'Bob Baker' },
];

export const SEED_POSTS: readonly SeedPost[] = [
  {
    title: 'Welcome to the lanes demo',
    body: 'Every Playwright project gets its own database.',
    published: true,
    authorEmail: 'alice@example.test',
  },
  {
    title: 'Draft: seeding strategies',
    body: 'Templates make fresh databases cheap.',
    published: false,
    authorEmail: 'alice@example.test',
  },
  {
    title: 'Hello from Bob',
    body: 'Parallel tests, no shared state.',
    published: true,
    authorEmail: 'bob@example.test',
  },
];

export const SEED_COMMENTS: readonly SeedComment[] = [
  { postTitle: 'Welcome to the lanes demo', authorEmail: 'bob@example.test', body: 'Nice isolation!' },
];
