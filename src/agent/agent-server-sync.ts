import type { z } from 'zod';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { Agent, FileSync } from './agent.js';
import type { AgentCallSchemas, AgentMethod, SyncExposeReply } from './agent-wire.js';
import type { AgentEventLog } from './agent-event-log.js';
import type { TlsIdentity } from './cluster-ca.js';
import { ServiceFileSync } from './service-file-sync.js';
import { syncPairKey } from './sync-pair-key.js';

/** The handler of one agent API method: its validated body in, its JSON reply out. */
export type AgentHandler<M extends AgentMethod> = (
  b: z.output<(typeof AgentCallSchemas)[M]>,
) => Promise<unknown>;

/** The agent API methods of file sync, served by {@link AgentServerSyncs}. */
export type SyncMethod = Extract<AgentMethod, `sync${string}`>;

/** What {@link AgentServerSyncs} tells the server about which client owns which file sync. */
export interface SyncOwners {
  /** `client` now owns the sync `syncId` (it created it): it lives as long as the client. */
  claim(client: string, syncId: string): void;
  /** `client` no longer owns the sync `syncId` (it was handed over to another client's sync). */
  release(client: string, syncId: string): void;
}

/** A file sync a client set up on this agent. */
interface SyncEntry {
  sync: FileSync;
  service: string;
  client: string;
  utilisation: number;
  /** Its echoes (id → state directory), as added through the API. */
  echoes: Map<string, string>;
  /**
   * Syncs of the same service that other clients (earlier control leaders) set up: they go on copying
   * into the echoes until this one is about to write into an echo directory ({@link AgentServerSyncs}).
   */
  retiring: SyncEntry[];
  /** Settles once the retiring syncs handed over so far are closed. */
  retired: Promise<void>;
}

/**
 * The file syncs the clients of an {@link AgentServer} set up on its agent, and the `sync*` methods of
 * the agent API: creation, echoes, the cross-host hand-over (`syncExposeEcho` on the source's host,
 * `syncFollow` on the echo's), and the hand-over of a service's sync from an earlier control leader's
 * client to the newer one's (one writer per echo directory).
 */
export class AgentServerSyncs {
  readonly #syncs = new Map<string, SyncEntry>();

  constructor(
    private readonly agent: Agent,
    private readonly events: AgentEventLog,
    private readonly owners: SyncOwners,
    /** The cluster secret: pair keys of cross-host file sync are derived from it. Never logged. */
    private readonly secret: string,
    /** This agent's TLS identity, used by its cross-host file sync. */
    private readonly tls: TlsIdentity | undefined,
  ) {}

  /** How many syncs there are now. */
  get size(): number {
    return this.#syncs.size;
  }

  /** Syncs handed over to a newer client's sync of their service and still copying. */
  handedOver(): number {
    const handed = (e: SyncEntry): number => e.retiring.reduce((n, r) => n + 1 + handed(r), 0);
    return [...this.#syncs.values()].reduce((n, e) => n + handed(e), 0);
  }

  /** The handlers of the `sync*` methods of the agent API. */
  handlers(): { [M in SyncMethod]: AgentHandler<M> } {
    const a = this.agent;
    return {
      syncCreate: async (b) => this.#create(b),
      syncSetPrimary: async (b) => {
        const e = this.#entry(b.syncId);
        // A source only reads: the handed-over sync goes on unless this one writes (it has echoes) or
        // the new primary is one of the directories it writes into.
        if (e.echoes.size > 0 || e.retiring.some((r) => writesInto(r).includes(b.stateDir)))
          await this.#retire(e);
        await e.sync.setPrimary(b.stateDir);
      },
      syncAddEcho: async (b) => {
        const e = this.#entry(b.syncId);
        await this.#retire(e);
        e.echoes.set(b.echoId, b.stateDir);
        await e.sync.addEcho(b.echoId, b.stateDir);
      },
      syncRemoveEcho: async (b) => {
        const e = this.#entry(b.syncId);
        await this.#retire(e);
        e.echoes.delete(b.echoId);
        await e.sync.removeEcho(b.echoId);
      },
      syncExposeEcho: async (b): Promise<SyncExposeReply> => {
        const entry = this.#entry(b.syncId);
        if (!(entry.sync instanceof ServiceFileSync))
          throw new UnderstudyError(ErrorCode.StateDir, 'this agent cannot sync files to other hosts');
        const port = await entry.sync.exposeTo(b.peerHost, b.echoId, {
          host: a.address,
          key: syncPairKey(this.secret, entry.service, a.host, b.peerHost),
          ...(this.tls ? { tls: this.tls } : {}),
        });
        return { address: a.address, port };
      },
      syncFollow: async (b) => {
        const entry = this.#entry(b.syncId);
        if (!(entry.sync instanceof ServiceFileSync))
          throw new UnderstudyError(ErrorCode.StateDir, 'this agent cannot sync files from other hosts');
        // It writes into this host's echoes: a sync handed over to it ends first.
        await this.#retire(entry);
        await entry.sync.followRemote({
          host: b.address,
          port: b.port,
          key: syncPairKey(this.secret, entry.service, b.sourceHost, a.host),
          ...(this.tls ? { tls: this.tls } : {}),
        });
      },
      syncWaitCaughtUp: async (b) => ({
        caughtUp: await this.#entry(b.syncId).sync.waitCaughtUp(b.echoId, b.timeoutMs),
      }),
      syncView: async (b) => {
        const entry = this.#syncs.get(b.syncId);
        if (!entry) throw new UnderstudyError(ErrorCode.NotFound, `no file sync '${b.syncId}' on this agent`);
        if (b.utilisation !== undefined) entry.utilisation = b.utilisation;
        const echoes = entry.sync.echoes();
        return {
          echoes,
          caughtUp: Object.fromEntries(echoes.map((e) => [e.echo, entry.sync.caughtUp(e.echo)])),
        };
      },
      syncClose: async (b) => this.drop(b.syncId),
    };
  }

  /** Ends the sync `syncId` and every sync handed over to it (nothing when there is none). */
  async drop(syncId: string): Promise<void> {
    const e = this.#syncs.get(syncId);
    this.#syncs.delete(syncId);
    if (e) await closeSync(e);
  }

  /** Ends every sync (the server closes). */
  async close(): Promise<void> {
    await Promise.all([...this.#syncs.values()].map((s) => closeSync(s)));
    this.#syncs.clear();
  }

  async #create(b: z.output<typeof AgentCallSchemas.syncCreate>): Promise<Record<string, never>> {
    // The same client creating it again (the agent restarted, or its stream had a gap): the old one
    // goes, what it had not handed over yet is handed to the new one.
    const previous = this.#syncs.get(b.syncId);
    this.#syncs.delete(b.syncId);
    if (previous) await previous.sync.close();
    // One writer per service's echo directories: a sync of the same service set up by another client
    // (an earlier control leader, SIGKILLed: its client lives on for `orphanGraceMs`) is handed over.
    // It goes on copying into the echoes until the new sync is about to write into an echo directory,
    // and is closed then, before: two syncs applying to one echo directory race on its files (and its
    // sync state file). Closing it here left the echoes without any sync until the new leader had set
    // up its own (seconds on a loaded host), and writes acknowledged meanwhile were lost with a crash.
    const retiring = previous?.retiring ?? [];
    for (const [id, other] of [...this.#syncs]) {
      if (other.service !== b.service || other.client === b.client) continue;
      this.#syncs.delete(id);
      this.owners.release(other.client, id);
      retiring.push(other);
    }
    const entry: SyncEntry = {
      sync: undefined as unknown as FileSync,
      service: b.service,
      client: b.client,
      utilisation: 0,
      echoes: new Map(),
      retiring,
      retired: previous?.retired ?? Promise.resolve(),
    };
    entry.sync = this.agent.fileSync({
      service: b.service,
      settings: b.settings,
      key: Buffer.from(b.key, 'base64'),
      utilisation: () => entry.utilisation,
      onEvent: (echoId, kind, message) =>
        this.events.push({ type: 'sync', syncId: b.syncId, echoId, kind, message }),
    });
    this.#syncs.set(b.syncId, entry);
    this.owners.claim(b.client, b.syncId);
    return {};
  }

  #entry(syncId: string): SyncEntry {
    const entry = this.#syncs.get(syncId);
    if (!entry) throw new UnderstudyError(ErrorCode.NotFound, `no file sync '${syncId}' on this agent`);
    return entry;
  }

  /** Closes the syncs handed over to `e` (once; every caller waits until they are closed). */
  #retire(e: SyncEntry): Promise<void> {
    if (e.retiring.length > 0) {
      const closing = e.retiring.splice(0).map((r) => closeSync(r).catch(() => undefined));
      e.retired = Promise.all([e.retired, ...closing]).then(() => undefined);
    }
    return e.retired;
  }
}

/** The echo directories a sync (and those handed over to it, not closed yet) writes into. */
function writesInto(e: SyncEntry): string[] {
  return [...e.echoes.values(), ...e.retiring.flatMap(writesInto)];
}

/** Closes a sync and every sync handed over to it not closed yet. */
async function closeSync(e: SyncEntry): Promise<void> {
  const retiring = e.retiring.splice(0);
  await Promise.all([e.sync.close(), e.retired, ...retiring.map((r) => closeSync(r))]);
}
