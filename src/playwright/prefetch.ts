import type { LaneManager } from '../lanes/lane-manager.js';

/**
 * Boots lanes ahead of need. Playwright hands its workers the tests project after project, so the
 * next project to need a lane is the one after the last project that asked: while a project's
 * tests run, the lanes of the next `ahead` projects boot, and the switch to the next project does
 * not wait for a lane boot. Only lanes of one-lane-per-project projects are booted ahead.
 */
export class LanePrefetcher {
  readonly #manager: LaneManager;
  readonly #order: readonly string[];
  readonly #ahead: number;

  /** `order`: the selected projects with one lane per project, in the order of the config. */
  constructor(manager: LaneManager, order: readonly string[], ahead: number) {
    this.#manager = manager;
    this.#order = order;
    this.#ahead = ahead;
  }

  /** Before any test runs: the first projects' lanes. */
  start(): void {
    this.#bootFrom(0);
  }

  /** A project's lane was asked for: the lanes of the projects after it. */
  asked(project: string): void {
    const index = this.#order.indexOf(project);
    if (index >= 0) this.#bootFrom(index + 1);
  }

  #bootFrom(index: number): void {
    for (const project of this.#order.slice(index, index + this.#ahead)) this.#manager.prefetchLane(project);
  }
}
