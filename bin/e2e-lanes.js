#!/usr/bin/env node
// Thin entry: load TypeScript through tsx, then run the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exit(await main(process.argv.slice(2)));
