import { parseListen, type ServiceSpec, type SpecFile } from '../config/index.js';
import { DnsServer, HaproxyAdapter, type HaproxySocket } from '../router/index.js';

/**
 * Seed 000's "update DNS/load balancer" on promotion: the authoritative DNS answer for
 * `<service>.<zone>.` and any external HAProxy named in a service's `routing.haproxy` are pointed at
 * the current primary. Failures are returned to the caller (recorded as decisions), never thrown past it.
 */
export class ExternalRouting {
  private constructor(
    readonly dns: DnsServer | undefined,
    private readonly haproxy: Map<string, { adapter: HaproxyAdapter; backend: string; server: string }>,
  ) {}

  static async create(spec: SpecFile): Promise<ExternalRouting> {
    let dns: DnsServer | undefined;
    if (spec.dns) {
      dns = await DnsServer.create({
        ...parseListen(spec.dns.listen),
        zone: spec.dns.zone,
      });
    }
    const haproxy = new Map<string, { adapter: HaproxyAdapter; backend: string; server: string }>();
    try {
      for (const s of spec.services) {
        const h = s.routing.haproxy;
        if (!h) continue;
        haproxy.set(s.name, {
          adapter: await HaproxyAdapter.create({ socket: parseSocket(h.socket) }),
          backend: h.backend,
          server: h.server,
        });
      }
    } catch (err) {
      await dns?.close();
      for (const h of haproxy.values()) await h.adapter.close();
      throw err;
    }
    return new ExternalRouting(dns, haproxy);
  }

  /** Points DNS and HAProxy at the service's new primary. Resolves to a description of what was updated. */
  async setPrimary(spec: ServiceSpec, host: string, port: number): Promise<string[]> {
    const done: string[] = [];
    if (this.dns) {
      this.dns.setRecord(spec.name, host);
      done.push(`dns ${spec.name} A ${host}`);
    }
    const h = this.haproxy.get(spec.name);
    if (h) {
      await h.adapter.switchTo(h.backend, { server: h.server, host, port }, { others: 'maint' });
      done.push(`haproxy ${h.backend}/${h.server} → ${host}:${port}`);
    }
    return done;
  }

  async close(): Promise<void> {
    await this.dns?.close();
    for (const h of this.haproxy.values()) await h.adapter.close();
  }
}

function parseSocket(text: string): HaproxySocket {
  if (text.startsWith('/') || text.startsWith('.')) return { path: text };
  return parseListen(text);
}
