// The client side of the agent API over TLS: control refuses an agent whose certificate is expired or
// does not name the address the agent is reached at, even when the cluster CA issued it.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { ProcessRuntime } from '../runtime/index.js';
import { AgentServer } from './agent-server.js';
import { createClusterCa, issueLeaf, type ClusterCa, type TlsIdentity } from './cluster-ca.js';
import { LocalAgent } from './local-agent.js';
import { RemoteAgent } from './remote-agent.js';

const SECRET = 'client-tls-test-secret-0123456789';
let local: LocalAgent;
let ca: ClusterCa;
let control: TlsIdentity;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  local = new LocalAgent({ runtime: await ProcessRuntime.create({ graceMs: 200 }), host: 'h1' });
  ca = await createClusterCa();
  control = await issueLeaf(ca, { name: 'control-test' });
});
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});
afterAll(async () => {
  await local?.close({ graceMs: 200 });
});

async function serve(tls: TlsIdentity): Promise<RemoteAgent> {
  const server = await AgentServer.start({ agent: local, secret: SECRET, tls });
  closers.push(() => server.close());
  expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  const remote = new RemoteAgent({
    host: 'h1',
    address: '127.0.0.1',
    url: server.url,
    secret: SECRET,
    tls: control,
  });
  closers.push(() => remote.close({ leaveRunning: true }));
  return remote;
}

describe('agent client over TLS', () => {
  it('talks to an agent whose certificate the cluster CA issued for the address it is reached at', async () => {
    const remote = await serve(await issueLeaf(ca, { name: 'h1', ips: ['127.0.0.1'] }));
    expect(await remote.info()).toMatchObject({ host: 'h1' });
  });

  it('refuses an agent of the cluster whose certificate names another address (UNDERSTUDY_ERR_TLS_CERTIFICATE)', async () => {
    const remote = await serve(await issueLeaf(ca, { name: 'h1', ips: ['10.9.9.9'] }));
    await expect(remote.info()).rejects.toMatchObject({
      code: ErrorCode.TlsCertificate,
      message: expect.stringContaining('ERR_TLS_CERT_ALTNAME_INVALID'),
    });
  });

  it('refuses an agent whose certificate has expired (UNDERSTUDY_ERR_TLS_CERTIFICATE)', async () => {
    const old = await issueLeaf(ca, {
      name: 'h1',
      ips: ['127.0.0.1'],
      now: new Date(Date.now() - 10 * 86_400_000),
      validityDays: 1,
    });
    const remote = await serve(old);
    await expect(remote.info()).rejects.toMatchObject({
      code: ErrorCode.TlsCertificate,
      message: expect.stringContaining('CERT_HAS_EXPIRED'),
    });
  });
});
