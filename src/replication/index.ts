export { ServiceReplication } from './service-replication.js';
export type {
  MutationRequest,
  MutationRules,
  MutationTicket,
  ServiceReplicationOptions,
  ServiceReplicationStats,
  WriteThroughOutcome,
} from './service-replication.js';
export { EchoReplicator } from './echo-replicator.js';
export type {
  EchoReplicationStats,
  EchoReplicatorOptions,
  EchoTarget,
  SeqOutcome,
} from './echo-replicator.js';
export { MutationLog } from './mutation-log.js';
export { DurableMutationLog, nodeMutationLogIo } from './mutation-log-durable.js';
export type {
  DurableMutationLogOptions,
  MutationLogIo,
  MutationLogRecovery,
} from './mutation-log-durable.js';
export { askAppliedSeq } from './applied-seq.js';
export type { AppliedSeqProbe } from './applied-seq.js';
export type { MutationLogOptions } from './mutation-log.js';
export { KeyedQueue } from './keyed-queue.js';
export { REPLAY_HEADERS, REPLAYED_HEADERS } from './mutation.js';
export { BATCH_CONTENT_TYPE, appliedPrefix, encodeBatch } from './batch.js';
export type { BatchEntryMeta, BatchResult, BatchRules } from './batch.js';
export type { Mutation, MutationKind } from './mutation.js';
export { replicationHooks } from './router-glue.js';
export { transferState } from './state-transfer.js';
export type { StateTransferEnd, StateTransferOptions, StateTransferResult } from './state-transfer.js';
