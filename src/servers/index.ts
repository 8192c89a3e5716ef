export { startServer } from './start-server.js';
export { startServers } from './start-servers.js';
export { attachServers, type Attached, type RunningServerRecord } from './attach.js';
export { isProcessAlive, killProcessGroup } from './process-group.js';
export { SERVER_DEFAULTS } from './options.js';
export { PRIVATE_RUNNER_ENV } from './private-env.js';
export type {
  KillProcessGroupOptions,
  ServerContext,
  ServerDefinition,
  ServerExit,
  StartedServer,
  StartedServers,
  StartServerOptions,
} from './types.js';
