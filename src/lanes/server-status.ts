/** A server of a running lane, as the fixtures see it when a test failed. */
export interface LaneServerStatus {
  name: string;
  pid: number;
  logFile: string;
  /** Set when the server died on its own while its lane was up (not stopped by the toolkit). */
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  /** Set when it died after the lane's database was swapped and its log shows a session ended under it. */
  afterSwap?: boolean;
  /** Set when its log file is incomplete (a full disk): why, and since when. */
  logProblem?: string;
  /** With `exit`: when it died (ISO time), if known. */
  diedAt?: string;
  /** With `exit`: a process that died and was restarted since (the lane has the new one under the same name). */
  restarted?: boolean;
  /** With `exit`: it died too often and is not restarted again. */
  givenUp?: boolean;
  /** How many times it was restarted in this run (failed starts included), when it was. */
  restarts?: number;
}

/** `exited with code 3` / `was killed by SIGKILL`. */
export function describeExit(exit: { code: number | null; signal: NodeJS.Signals | null }): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}
