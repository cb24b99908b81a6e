// The agent's TLS ingress on the agent API's port: a control replica's TLS connection naming an
// instance of this agent in its SNI reaches the instance (a real process listening on loopback only);
// anything else is refused and told in one log line.
import { checkServerIdentity, connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIngressHost, type IngressHost } from '../../test/lib/ingress-host.js';
import { UpstreamDialer } from '../router/upstream-tls.js';
import { createClusterCa, issueLeaf, type ClusterCa, type TlsIdentity } from './cluster-ca.js';
import { ingressServername, parseIngressServername, type TlsIngress } from './tls-ingress.js';

const SECRET = 'ingress-test-secret-0123456789abcdef';
let host: IngressHost | undefined;
let ca: ClusterCa;
let control: TlsIdentity;
let ingress: TlsIngress;
let apiPort: number;
let instancePort: number;
const logs: string[] = [];

beforeAll(async () => {
  host = await startIngressHost({ secret: SECRET, prefix: 'us-ingress-', log: (line) => logs.push(line) });
  ({ ca, control, ingress, port: apiPort } = host);
  instancePort = await host.local.allocatePort();
  // A real instance, bound to the host's loopback only.
  await host.startInstance(
    'web-1',
    `require('http').createServer((q, s) => s.end('web-1 answers ' + q.method + ' ' + q.url)).listen(${instancePort}, '127.0.0.1')`,
    instancePort,
  );
}, 30_000);

afterAll(async () => {
  await host?.close();
});

/** One HTTP request over TLS to the agent's port with `servername`; what came back before the close. */
function exchange(
  servername: string | undefined,
  identity: Partial<TlsIdentity> & { ca: string },
  req = 'GET /hello HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n',
): Promise<{ reply: string; secure: boolean }> {
  return new Promise((resolve) => {
    let reply = '';
    let secure = false;
    const s = tlsConnect({
      host: '127.0.0.1',
      port: apiPort,
      ...(servername ? { servername } : {}),
      ca: identity.ca,
      ...(identity.cert ? { cert: identity.cert, key: identity.key } : {}),
      checkServerIdentity: (_n, cert) => checkServerIdentity('127.0.0.1', cert),
    });
    s.once('secureConnect', () => {
      secure = true;
      s.write(req);
    });
    s.on('data', (d: Buffer) => (reply += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ reply, secure }));
  });
}

describe('TLS ingress', () => {
  it('names an instance and port in SNI as <port>.<instance-id>.understudy, and reads it back', () => {
    expect(ingressServername('kv-12', 8080)).toBe('8080.kv-12.understudy');
    expect(parseIngressServername('8080.kv-12.understudy')).toEqual({ instanceId: 'kv-12', port: 8080 });
    expect(parseIngressServername('h1.example')).toBeUndefined();
    expect(parseIngressServername('99999.kv-1.understudy')).toBeUndefined();
    expect(ingressServername('Not_A_Label', 80)).toBeUndefined();
  });

  it('pipes a control replica’s TLS connection to the instance its SNI names, over loopback', async () => {
    const before = ingress.stats().forwarded;
    const { reply } = await exchange(ingressServername('web-1', instancePort)!, control);
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    expect(reply).toContain('web-1 answers GET /hello');
    expect(ingress.stats().forwarded).toBe(before + 1);
  });

  /** Starts an instance that answers `<id> answers` on a port of its own; gives the port. */
  async function startAnswering(id: string): Promise<number> {
    const port = await host!.local.allocatePort();
    await host!.startInstance(
      id,
      `require('http').createServer((q, s) => s.end('${id} answers')).listen(${port}, '127.0.0.1')`,
      port,
    );
    return port;
  }

  /** Counts the ingress's checks of /proc (the local runtime's footprint calls) until restored. */
  function countChecks(): { readonly count: number; restore(): void } {
    const local = host!.local;
    const footprint = local.footprint.bind(local);
    let count = 0;
    local.footprint = async (id) => {
      count++;
      return footprint(id);
    };
    return {
      get count() {
        return count;
      },
      restore: () => {
        local.footprint = footprint;
      },
    };
  }

  it('connections to one instance that arrive together share one check of /proc (a failover opens many at once)', async () => {
    const port = await startAnswering('web-2');
    const checks = countChecks();
    try {
      const replies = await Promise.all(
        Array.from({ length: 8 }, () => exchange(ingressServername('web-2', port)!, control)),
      );
      expect(replies.map((r) => /^HTTP\/1\.1 200/.test(r.reply))).toEqual(Array(8).fill(true));
      expect(checks.count).toBe(1);
    } finally {
      checks.restore();
    }
  });

  it('a router’s warm-up dial (before a failover switches to the instance) leaves it checked: the connection that follows finds the check done', async () => {
    const port = await startAnswering('web-3');
    const dialer = new UpstreamDialer();
    // The instance's address is only a key here: the ingress that serves it is this agent's port.
    dialer.set({ ...control, ingressOf: () => ({ host: '127.0.0.1', port: apiPort }) });
    const target = { id: 'web-3', host: '192.0.2.10', port };
    const checks = countChecks();
    try {
      expect(await dialer.warm(target, 5000)).toBe(true);
      for (let i = 0; i < 100 && checks.count === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(checks.count).toBe(1);
      const { reply } = await exchange(ingressServername('web-3', port)!, control);
      expect(reply).toMatch(/^HTTP\/1\.1 200/);
      expect(checks.count).toBe(1);
      // An instance on the router's own machine is dialled in plain TCP: nothing to warm.
      expect(await dialer.warm({ ...target, host: '127.0.0.1' }, 5000)).toBe(false);
    } finally {
      checks.restore();
    }
  });

  it('leaves connections without an ingress SNI to the agent API on the same port', async () => {
    const body = '{}';
    const { reply } = await exchange(
      undefined,
      control,
      [
        'POST /v1/info HTTP/1.1',
        'host: h1',
        `authorization: Bearer ${SECRET}`,
        'content-type: application/json',
        `content-length: ${body.length}`,
        'connection: close',
        '',
        body,
      ].join('\r\n'),
    );
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    expect(reply).toContain('"host":"h1"');
  });

  it('refuses a connection that presents no client certificate, and says so', async () => {
    const before = ingress.stats().refused.certificate;
    const { reply } = await exchange(ingressServername('web-1', instancePort)!, { ca: ca.certPem });
    expect(reply).toBe('');
    expect(ingress.stats().refused.certificate).toBe(before + 1);
    expect(logs.at(-1)).toMatch(
      /ingress refused .* → \d+\.web-1\.understudy: .*cluster CA is required \(none presented\)/,
    );
  });

  it('refuses a client certificate of another CA', async () => {
    const other = await issueLeaf(await createClusterCa(), { name: 'control-c1' });
    const before = ingress.stats().refused.certificate;
    const { reply } = await exchange(ingressServername('web-1', instancePort)!, { ...other, ca: ca.certPem });
    expect(reply).toBe('');
    expect(ingress.stats().refused.certificate).toBe(before + 1);
    expect(logs.at(-1)).toMatch(/cluster CA is required \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|[A-Z_]+)\)/);
  });

  it('refuses a certificate of the cluster CA that is not a control replica’s (another agent)', async () => {
    const agent = await issueLeaf(ca, { name: 'h2', ips: ['127.0.0.1'] });
    const { reply } = await exchange(ingressServername('web-1', instancePort)!, agent);
    expect(reply).toBe('');
    expect(logs.at(-1)).toContain("the certificate 'h2' is not a control replica's");
  });

  it('refuses an instance this agent does not run', async () => {
    const before = ingress.stats().refused.instance;
    const { reply } = await exchange(ingressServername('web-9', instancePort)!, control);
    expect(reply).toBe('');
    expect(ingress.stats().refused.instance).toBe(before + 1);
    expect(logs.at(-1)).toContain('instance web-9 does not run on this agent');
  });

  it('refuses a port its instance does not listen on (another service’s, or the agent’s own)', async () => {
    const { reply } = await exchange(ingressServername('web-1', apiPort)!, control);
    expect(reply).toBe('');
    expect(logs.at(-1)).toContain(`instance web-1 does not listen on port ${apiPort}`);
  });
});
