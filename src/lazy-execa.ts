/**
 * execa, loaded on first use. A run on a cached template and a server given by URL starts no
 * process through it, and loading it costs tens of milliseconds at the start of every run.
 */
import type { execa as Execa } from 'execa';

let loaded: Promise<typeof Execa> | undefined;

/** Resolves execa's `execa`, importing the package the first time. */
export function loadExeca(): Promise<typeof Execa> {
  return (loaded ??= import('execa').then((module) => module.execa));
}
