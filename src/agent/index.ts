export { ServiceFileSync } from './service-file-sync.js';
export type { EchoFileSyncView, FileSyncSettings, ServiceFileSyncOptions } from './service-file-sync.js';
