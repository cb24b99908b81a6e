// Queries the DNS answer with a real resolver client: Node's dns.Resolver (c-ares), over UDP and TCP.
import { Resolver } from 'node:dns/promises';
import { connect } from 'node:net';
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { DnsServer } from '../../src/router/index.js';

const servers: DnsServer[] = [];
afterEach(async () => {
  while (servers.length) await (servers.pop() as DnsServer).close();
});

async function start(): Promise<{ dns: DnsServer; resolver: Resolver }> {
  const dns = await DnsServer.create({ port: 0 });
  servers.push(dns);
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([dns.server]);
  return { dns, resolver };
}

describe('DnsServer', () => {
  it("answers A <service>.understudy. with the current primary's address and TTL 1 s, following a switch", async () => {
    const { dns, resolver } = await start();
    dns.setRecord('kv', '127.0.0.11');
    expect(await resolver.resolve4('kv.understudy', { ttl: true })).toEqual([
      { address: '127.0.0.11', ttl: 1 },
    ]);
    dns.setRecord('kv', '127.0.0.12');
    expect(await resolver.resolve4('KV.understudy.')).toEqual(['127.0.0.12']);
    dns.setRecord('web', ['10.0.0.1', '10.0.0.2']);
    expect((await resolver.resolve4('web.understudy')).sort()).toEqual(['10.0.0.1', '10.0.0.2']);
  });

  it('answers NXDOMAIN for an unknown service and REFUSED for another zone', async () => {
    const { dns, resolver } = await start();
    dns.setRecord('kv', '127.0.0.11');
    await expect(resolver.resolve4('nope.understudy')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    dns.deleteRecord('kv');
    await expect(resolver.resolve4('kv.understudy')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolver.resolve4('example.com')).rejects.toMatchObject({ code: 'EREFUSED' });
    expect(dns.stats()).toMatchObject({ nxdomain: 2, refused: 1 });
  });

  it('answers over TCP with a length-prefixed message', async () => {
    const { dns } = await start();
    dns.setRecord('kv', '127.0.0.11');
    const query = dnsPacket.streamEncode({
      type: 'query',
      id: 7,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: 'A', name: 'kv.understudy' }],
    });
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const s = connect(dns.address.port, '127.0.0.1', () => s.write(query));
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          s.destroy();
          resolve(buf);
        }
      });
      s.on('error', reject);
    });
    const p = dnsPacket.streamDecode(reply);
    expect(p.id).toBe(7);
    expect((p.flags ?? 0) & dnsPacket.AUTHORITATIVE_ANSWER).toBeTruthy();
    expect(p.answers).toEqual([
      expect.objectContaining({ type: 'A', name: 'kv.understudy', ttl: 1, data: '127.0.0.11' }),
    ]);
  });

  it('rejects a service name that is not a DNS label', async () => {
    const { dns } = await start();
    expect(() => dns.setRecord('bad_name!', '127.0.0.1')).toThrow(
      expect.objectContaining({ code: 'UNDERSTUDY_ERR_ROUTER_CONFIG' }),
    );
    expect(() => dns.setRecord('kv', 'not-an-ip')).toThrow(
      expect.objectContaining({ code: 'UNDERSTUDY_ERR_ROUTER_CONFIG' }),
    );
  });
});
