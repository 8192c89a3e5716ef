import { existsSync } from 'node:fs';
import { chromium } from '@playwright/test';
import { CHROMIUM_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';

/** Where system Chromium builds usually live. */
const SYSTEM_CHROMIUMS = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/snap/bin/chromium',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
];

/** Flags a system Chromium needs to run headless in a container or CI without a network. */
export const SYSTEM_CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Playwright's own Chromium, when it is installed. */
export function playwrightChromium(): string | undefined {
  try {
    const path = chromium.executablePath();
    return path && existsSync(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

/** A Chromium installed on the system (or named by `E2E_LANES_CHROMIUM`), when there is one. */
export function systemChromium(): string | undefined {
  const fromEnv = process.env[CHROMIUM_ENV];
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  return SYSTEM_CHROMIUMS.find((path) => existsSync(path));
}

/** The error for a machine without any Chromium. */
export function browserNotFound(): LanesError {
  return new LanesError('BROWSER_NOT_FOUND', 'No Chromium found: Playwright\'s own is not installed and no system Chromium was found.', {
    hint: `Run \`npx playwright install chromium\` (or, on Debian/Ubuntu, \`apt-get install -y chromium\`), or set ${CHROMIUM_ENV} to a Chromium executable.`,
  });
}
