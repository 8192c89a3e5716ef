#!/usr/bin/env node
// Thin entry: the CLI itself is built JS; it loads a TypeScript playwright.config.ts through tsx's scoped loader.
const { main } = await import('../dist/cli/main.js');
process.exit(await main(process.argv.slice(2)));
