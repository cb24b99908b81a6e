export { Router } from './router.js';
export type { RouterStats, EventLoopDelayStats, SetBackendsResult } from './router.js';
export { resolveRouterOptions, SLOW_START_MIN_FRACTION } from './router-options.js';
export type { RouterOptions, ResolvedRouterOptions, BackendTarget, ShadowTarget } from './router-options.js';
export type {
  Interceptor,
  InterceptDecision,
  AfterResponse,
  RouterRequest,
  RouterResponseInfo,
  RouterOutcome,
  HoldOutcome,
} from './intercept.js';
export type { BackendStats, FencingStats } from './backend-set.js';
export type { HttpStats, HttpErrorKind } from './proxy-errors.js';
export type { TcpStats } from './tcp-proxy.js';
export {
  normaliseRequestTarget,
  pathMayMatch,
  methodOverrides,
  METHOD_OVERRIDE_HEADERS,
} from './request-target.js';
export type { RequestTarget, AcceptedTarget, RejectedTarget } from './request-target.js';
export type { MirrorStats, WarmUpResult } from './mirror.js';
export type { ReadSampleStats, SampledRead } from './read-sample.js';
export type { PauseStats } from './mutation-gate.js';
export type { LatencySnapshot } from './latency-histogram.js';
export { LATENCY_BUCKETS_MS } from './latency-histogram.js';
export { HaproxyAdapter } from './haproxy-adapter.js';
export type {
  HaproxyAdapterOptions,
  HaproxySocket,
  HaproxyServer,
  HaproxyServerState,
} from './haproxy-adapter.js';
export { DnsServer } from './dns-server.js';
export type { DnsServerOptions, DnsStats } from './dns-server.js';
export { UpstreamDialer, ingressServername } from './upstream-tls.js';
export type { UpstreamTls, UpstreamStats, UpstreamRoute } from './upstream-tls.js';
