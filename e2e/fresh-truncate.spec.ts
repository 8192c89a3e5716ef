import { freshDataTests } from './fresh-data.ts';

// Each test starts from the seed: the lane's tables are emptied and refilled in one transaction, no session ended.
freshDataTests('truncate');
