/** The rows every test starts from: two authors and their notes, in this order. */
export const SEED_AUTHORS = ['ada', 'grace'] as const;

export const SEED_NOTES: ReadonlyArray<{ title: string; author: (typeof SEED_AUTHORS)[number] }> = [
  { title: 'Analytical engine', author: 'ada' },
  { title: 'Bernoulli numbers', author: 'ada' },
  { title: 'COBOL', author: 'grace' },
];
