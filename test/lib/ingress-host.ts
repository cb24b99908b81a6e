// One host's agent with its TLS ingress, on loopback, for the tests of the ingress and of the router's
// connections through it: a LocalAgent of host `h1`, a cluster CA, a control replica's leaf, and the
// agent API served over HTTPS with the ingress on its port. Instances are real processes bound to
// loopback only.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AgentServer,
  createClusterCa,
  issueLeaf,
  LocalAgent,
  TlsIngress,
  type ClusterCa,
  type TlsIdentity,
} from '../../src/agent/index.js';
import { ProcessRuntime } from '../../src/runtime/index.js';

/** Options of {@link startIngressHost}. */
export interface IngressHostOptions {
  /** The cluster secret of the agent API. */
  secret: string;
  /** Prefix of the temporary directory (instances' directories and logs). */
  prefix: string;
  /** Where the ingress's log lines go. @default dropped */
  log?: (line: string) => void;
}

/** A host `h1` whose agent API (HTTPS, `127.0.0.1`) carries its TLS ingress. */
export interface IngressHost {
  /** The temporary directory of the instances. */
  dir: string;
  local: LocalAgent;
  ca: ClusterCa;
  /** A control replica's leaf of `ca` (`control-c1`). */
  control: TlsIdentity;
  ingress: TlsIngress;
  server: AgentServer;
  /** The agent API's port, the ingress's too. */
  port: number;
  /** Starts instance `id` (service: `id` without its `-<n>`) running `node -e script`; returns once `port` accepts. */
  startInstance(id: string, script: string, port: number): Promise<void>;
  /** Closes the ingress, the server and the agent (its instances stopped), and removes the directory. */
  close(): Promise<void>;
}

/** Whether something accepts TCP connections on `127.0.0.1:port`. */
export async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Starts the host (see {@link IngressHost}); closed by its `close()`, also when this throws midway. */
export async function startIngressHost(options: IngressHostOptions): Promise<IngressHost> {
  const dir = mkdtempSync(join(tmpdir(), options.prefix));
  const local = new LocalAgent({ runtime: await ProcessRuntime.create({ graceMs: 200 }), host: 'h1' });
  let ingress: TlsIngress | undefined;
  let server: AgentServer | undefined;
  const close = async (): Promise<void> => {
    ingress?.close();
    await server?.close();
    await local.close({ graceMs: 200 });
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ca = await createClusterCa();
    const control = await issueLeaf(ca, { name: 'control-c1' });
    ingress = new TlsIngress({ agent: local, log: options.log ?? (() => undefined) });
    server = await AgentServer.start({
      agent: local,
      secret: options.secret,
      tls: await issueLeaf(ca, { name: 'h1', ips: ['127.0.0.1'] }),
      ingress,
    });
    const startInstance = async (id: string, script: string, port: number): Promise<void> => {
      await local.start({
        instanceId: id,
        service: id.replace(/-\d+$/, ''),
        host: 'h1',
        command: [process.execPath, '-e', script],
        cwd: dir,
        env: {},
        stateDir: join(dir, id),
        logDir: join(dir, 'logs'),
        logMaxBytes: 65536,
      });
      for (let i = 0; i < 200 && !(await listening(port)); i++) await new Promise((r) => setTimeout(r, 25));
    };
    return {
      dir,
      local,
      ca,
      control,
      ingress,
      server,
      port: Number(new URL(server.url).port),
      startInstance,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
