/**
 * Ports that browsers refuse to load pages from (`net::ERR_UNSAFE_PORT` in Chromium, "This address is
 * restricted" in Firefox): the union of Chromium's `kRestrictedPorts` (net/base/port_util.cc) and
 * Firefox's `gBadPortList` (netwerk/base/nsIOService.cpp), which both follow the Fetch standard's
 * "bad port" list. A lane server on one of them would answer curl but fail every browser test, so
 * the port allocator never hands them out, whatever the range, and counts them as unavailable when
 * it judges a range exhausted. Ports below 1024 are listed for completeness (ranges start at 1024).
 */
export const BROWSER_RESTRICTED_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119,
  123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990,
  993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

/** Whether browsers refuse `port` (see {@link BROWSER_RESTRICTED_PORTS}). */
export function isBrowserRestrictedPort(port: number): boolean {
  return BROWSER_RESTRICTED_PORTS.has(port);
}

/** How many ports of the inclusive range browsers refuse. */
export function restrictedPortsIn(first: number, last: number): number[] {
  return [...BROWSER_RESTRICTED_PORTS].filter((port) => port >= first && port <= last).sort((a, b) => a - b);
}
