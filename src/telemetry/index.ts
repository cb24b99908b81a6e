export { Telemetry } from './telemetry.js';
export type { Exposition, MetricDescription, TelemetrySource } from './telemetry.js';
export {
  METRICS_TABLE_BEGIN,
  METRICS_TABLE_END,
  metricsTable,
  parseMetricsTable,
  replaceMetricsTable,
} from './metrics-doc.js';
export type {
  BackendSample,
  DecisionObservation,
  EchoReplicationSample,
  FileSyncSample,
  InstanceSample,
  LatencySample,
  PromotionObservation,
  PromotionObserver,
  ReplicationSample,
  RouterSample,
  ScalingSample,
  ServiceSample,
  TelemetrySample,
} from './telemetry-sample.js';
export {
  addToDigest,
  ageDigest,
  bucketOf,
  bucketUpper,
  digestQuantile,
  emptyDigest,
  mergeDigests,
  DIGEST_FLOOR,
  DIGEST_RATIO,
} from './profile-digest.js';
export type { Digest } from './profile-digest.js';
export {
  PROFILE_RESOURCES,
  hourOf,
  hourSamples,
  newProfile,
  observeDependencies,
  observeStartup,
  observeUsage,
  parseProfile,
  percentilesOf,
  profileHours,
  resolveProfileOptions,
} from './profile.js';
export type {
  DependencyChange,
  ProfileDependencies,
  ProfileHourView,
  ProfileOptions,
  ProfileResource,
  ResolvedProfileOptions,
  ResourcePercentiles,
  ServiceProfile,
  UsageSample,
} from './profile.js';
