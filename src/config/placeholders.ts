/** Values substituted into a service's command, env and paths, per instance. */
export interface PlaceholderValues {
  instance: string;
  service: string;
  role: string;
  stateDir: string;
  specDir: string;
  dataDir: string;
  /** Named ports of this instance; `{port}` is the first. */
  ports: Record<string, number>;
}

const PLACEHOLDER = /\{([a-zA-Z]+(?:\.[a-z][a-z0-9-]*)?)\}/g;
const SIMPLE = new Set(['instance', 'service', 'role', 'stateDir', 'specDir', 'dataDir', 'port']);

/** Names of placeholders in `text` that are not known for a service with these port names. */
export function unknownPlaceholders(text: string, portNames: string[]): string[] {
  const unknown: string[] = [];
  for (const m of text.matchAll(PLACEHOLDER)) {
    const name = m[1] ?? '';
    if (SIMPLE.has(name)) continue;
    if (name.startsWith('port.') && portNames.includes(name.slice(5))) continue;
    unknown.push(name);
  }
  return unknown;
}

/** Replaces `{port}`, `{port.NAME}`, `{stateDir}`, `{instance}`, `{service}`, `{role}`, `{specDir}`, `{dataDir}`. */
export function expandPlaceholders(text: string, values: PlaceholderValues): string {
  return text.replace(PLACEHOLDER, (whole, name: string) => {
    if (name === 'port') {
      const first = Object.values(values.ports)[0];
      return first === undefined ? whole : String(first);
    }
    if (name.startsWith('port.')) {
      const port = values.ports[name.slice(5)];
      return port === undefined ? whole : String(port);
    }
    const v = (values as unknown as Record<string, unknown>)[name];
    return typeof v === 'string' ? v : whole;
  });
}
