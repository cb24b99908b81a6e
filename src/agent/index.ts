export { ServiceFileSync } from './service-file-sync.js';
export type { EchoFileSyncView, FileSyncSettings, ServiceFileSyncOptions } from './service-file-sync.js';
export { AgentRegistry } from './agent.js';
export type {
  Agent,
  FileSync,
  HostFacts,
  InstanceHook,
  InstanceWatch,
  InstanceWatchHandlers,
} from './agent.js';
export { LocalAgent, LOOPBACK } from './local-agent.js';
export type { LocalAgentOptions } from './local-agent.js';
export { AgentServer, parseListen } from './agent-server.js';
export type { AgentServerOptions } from './agent-server.js';
export { RemoteAgent, ingressAt } from './remote-agent.js';
export { HostAgentRegistry } from './host-registry.js';
export type { HostAgentRegistryOptions, HostRecordSource } from './host-registry.js';
export { HOSTS_PREFIX, HOST_NAME, hostKey, parseHostRecord, restartWindow } from './host-record.js';
export type { HostRecord } from './host-record.js';
export { CLUSTER_KEY_FILE, clusterKeyPath, ensureClusterKey, readClusterKey } from './cluster-key.js';
export type { RemoteAgentOptions } from './remote-agent.js';
export { checkLeaf, createClusterCa, issueLeaf } from './cluster-ca.js';
export type {
  CheckLeafOptions,
  ClusterCa,
  ClusterCaOptions,
  LeafOptions,
  TlsIdentity,
} from './cluster-ca.js';
export { CLUSTER_CA_FILE, clusterCaPath, ensureClusterCa, readClusterCa } from './cluster-ca-file.js';
export { clusterTlsIdentity } from './cluster-tls.js';
export type { ClusterTlsOptions } from './cluster-tls.js';
export type { AgentInfo, AgentEvent } from './agent-wire.js';
export { FakeAgent, FakeFileSync } from './fake-agent.js';
export type { FakeAgentOptions, FakeInstance } from './fake-agent.js';
export { ManualClock, systemClock } from './clock.js';
export type { Clock } from './clock.js';
// What control needs of the runtime's vocabulary: control reaches the runtime only through the agent.
export type {
  CloseOptions,
  HookRequest,
  HookResult,
  InstanceExit,
  InstanceHandle,
  InstanceLaunch,
  InstanceFootprint,
  InstanceStats,
  LimitsSupport,
  ResourceLimits,
  Runtime,
  StopOptions,
} from '../runtime/index.js';
export { nextRestartDelay } from '../runtime/index.js';
export { HostLease } from './host-lease.js';
export type { HostLeaseOptions, HostLeaseStore } from './host-lease.js';
export { TlsIngress, INGRESS_DOMAIN, ingressServername, parseIngressServername } from './tls-ingress.js';
export type { TlsIngressOptions, IngressStats, IngressRefusals, IngressAgent } from './tls-ingress.js';
