export { PortAllocator, PORTS_FILE, type PortAllocation, type PortEntry, type PortListing, type AllocateOptions } from './port-allocator.js';
export { type PortAllocatorOptions, DEFAULT_PORT_RANGE, DEFAULT_PORT_NAMES } from './options.js';
export { isPortFree, canBind } from './probe.js';
