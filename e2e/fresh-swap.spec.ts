import { freshDataTests } from './fresh-data.ts';

// Each test starts from the seed: the lane's database is swapped for a ready copy of the template.
freshDataTests('swap');
