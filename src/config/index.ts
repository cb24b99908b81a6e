export {
  checkStateDirsForDatabases,
  loadSpecFile,
  parseSpecText,
  resolveProgram,
  ConfigError,
} from './load.js';
export { postgresProgramIn, usesFileSync } from './file-sync-databases.js';
export type { ConfigProblem, LoadedSpec, LoadSpecOptions } from './load.js';
export { expandPlaceholders, unknownPlaceholders } from './placeholders.js';
export type { PlaceholderValues } from './placeholders.js';
export { parseBytes, parseDuration, parseListen } from './units.js';
export { didYouMean } from './did-you-mean.js';
export { maxInstances, sameOrNested, stateDirClashes } from './state-dirs.js';
export type { StateDirClash } from './state-dirs.js';
export { fileSchema, serviceSchema } from './schema.js';
export type {
  EchoSpec,
  ExternalEchoSpec,
  ExternalHookSpec,
  FailoverSpec,
  MigrationSpec,
  MutationsSpec,
  HealthSpec,
  ResourcesSpec,
  RestartSpec,
  RoutingSpec,
  ScalingSpec,
  ShadowSpec,
  ServiceSpec,
  SpecFile,
  SyncSpec,
} from './schema.js';
