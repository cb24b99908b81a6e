// Where control's routers find a host's TLS ingress: the host and port of its agent's https:// URL,
// only when its host record says the agent serves one.
import { describe, expect, it } from 'vitest';
import { FakeAgent } from './fake-agent.js';
import { ingressAt, ingressOfUrl } from './remote-agent.js';

describe('TLS ingress of a host', () => {
  it('is the host and port of the agent’s https:// URL (IPv6 without brackets)', () => {
    expect(ingressOfUrl('https://10.0.0.5:7700')).toEqual({ host: '10.0.0.5', port: 7700 });
    expect(ingressOfUrl('https://[fd00::5]:7700/')).toEqual({ host: 'fd00::5', port: 7700 });
  });

  it('does not exist for a plain-HTTP agent or a malformed URL (no TLS to dial)', () => {
    expect(ingressOfUrl('http://10.0.0.5:7700')).toBeUndefined();
    expect(ingressOfUrl('not a url')).toBeUndefined();
  });

  it('is not found for an address no remote agent serves (an in-process agent has none)', () => {
    const local = new FakeAgent({ host: 'local' });
    expect(ingressAt([local], local.address)).toBeUndefined();
    expect(ingressAt([], '10.0.0.5')).toBeUndefined();
  });
});
