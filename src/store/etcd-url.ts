import { ErrorCode, UnderstudyError } from '../errors/index.js';

/** What an `etcd://` connection string names. */
export interface EtcdTarget {
  /** `host:port` of each endpoint, in the order given. */
  endpoints: string[];
  /** Key prefix from the path (`etcd://h:p/prod/` gives `prod/`); undefined when the path is empty. */
  prefix?: string;
}

/** The default etcd client port, used when an endpoint gives none. */
export const ETCD_DEFAULT_PORT = 2379;

/** Whether `store` is an etcd connection string (as opposed to the embedded default). */
export function isEtcdUrl(store: string): boolean {
  return /^etcd:\/\//i.test(store.trim());
}

/**
 * Parses `etcd://host:port[,host:port...][/prefix/]`. Hosts are names, IPv4 addresses or bracketed
 * IPv6 addresses; a missing port is {@link ETCD_DEFAULT_PORT}. Throws `UNDERSTUDY_ERR_USAGE` saying
 * what is wrong and where for anything else.
 */
export function parseEtcdUrl(url: string): EtcdTarget {
  const bad = (why: string): UnderstudyError =>
    new UnderstudyError(
      ErrorCode.Usage,
      `invalid etcd connection string '${url}': ${why} (expected etcd://host:port[,host:port...][/prefix/])`,
      { details: { store: url } },
    );
  const match = /^etcd:\/\/([^/?#]*)(\/[^?#]*)?$/i.exec(url.trim());
  if (!match) {
    if (/[?#]/.test(url)) throw bad('query strings and fragments are not supported');
    throw bad('it must start with etcd://');
  }
  const hosts = (match[1] ?? '').split(',');
  if (hosts.length === 1 && hosts[0] === '') throw bad('no endpoint is given');
  const endpoints = hosts.map((raw, i) => {
    const where = `endpoint ${i + 1} ('${raw}')`;
    if (raw === '') throw bad(`${where} is empty`);
    if (raw.includes('@')) throw bad(`${where}: credentials do not belong in the URL; use the auth options`);
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d+))?$/.exec(raw);
    if (!m) throw bad(`${where} is not host[:port]`);
    const port = m[2] === undefined ? ETCD_DEFAULT_PORT : Number(m[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw bad(`${where} has port ${m[2]}, not 1-65535`);
    return `${m[1]}:${port}`;
  });
  const path = (match[2] ?? '').replace(/^\/+/, '');
  if (path === '') return { endpoints };
  if (
    path
      .split('/')
      .some((part, i, all) => part === '..' || part === '.' || (part === '' && i < all.length - 1))
  )
    throw bad(`the prefix '${path}' has an empty, '.' or '..' segment`);
  return { endpoints, prefix: path.endsWith('/') ? path : `${path}/` };
}
