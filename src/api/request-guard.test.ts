import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { PUBLIC_ROUTES, allowedHosts } from './request-guard.js';

describe('the Host allow-list of the API', () => {
  it('names the loopback addresses and the configured host, with the port', () => {
    expect([...allowedHosts('127.0.0.1', 7001)].sort()).toEqual([
      '127.0.0.1:7001',
      '[::1]:7001',
      'localhost:7001',
    ]);
    expect(allowedHosts('Control.Example', 7001).has('control.example:7001')).toBe(true);
    expect(allowedHosts('::1', 7001).has('[::1]:7001')).toBe(true);
  });

  it('accepts a Host without a port only for a listener on port 80', () => {
    expect(allowedHosts('127.0.0.1', 80).has('localhost')).toBe(true);
    expect(allowedHosts('127.0.0.1', 7001).has('localhost')).toBe(false);
  });

  it("adds the machine's own addresses for a wildcard listen, and never a foreign name", () => {
    const hosts = allowedHosts('0.0.0.0', 7001);
    const first = Object.values(networkInterfaces()).flat()[0];
    if (first)
      expect(hosts.has(first.family === 'IPv6' ? `[${first.address}]:7001` : `${first.address}:7001`)).toBe(
        true,
      );
    expect(hosts.has('0.0.0.0:7001')).toBe(true);
    expect(hosts.has('evil.example:7001')).toBe(false);
  });

  it("has /healthz and the dashboard's static files and login exchange as its only public routes", () => {
    expect([...PUBLIC_ROUTES]).toEqual(['/healthz', '/ui/', '/ui/assets/:file', '/ui/login']);
  });
});
