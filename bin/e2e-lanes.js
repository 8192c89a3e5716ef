#!/usr/bin/env node
// Thin entry: tsx lets the CLI load a TypeScript playwright.config.ts; the CLI itself is built JS.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../dist/cli/main.js');
process.exit(await main(process.argv.slice(2)));
