/** The rows every database of the app starts with (prisma/seed.ts inserts them, in this order). */
export const SEED_LISTS = ['Home', 'Work'] as const;

export const SEED_TASKS: ReadonlyArray<{ title: string; list: (typeof SEED_LISTS)[number] }> = [
  { title: 'Buy milk', list: 'Home' },
  { title: 'Fix the bike', list: 'Home' },
  { title: 'Write the report', list: 'Work' },
];
