import { globToRegExp } from './glob.js';

/** A priority class: paths matching any pattern belong to it. Classes listed first are sent first. */
export interface PriorityClass {
  readonly name: string;
  readonly patterns: readonly string[];
}

/**
 * Default classes (seed 000): application data first, then code, then config/system.
 * Paths matching no class count as application data.
 */
export const DEFAULT_PRIORITY_CLASSES: readonly PriorityClass[] = [
  { name: 'data', patterns: [] },
  {
    name: 'code',
    patterns: [
      '*.{js,mjs,cjs,ts,py,rb,go,rs,java,class,jar,so,wasm,php,pl,sh}',
      'bin/**',
      'lib/**',
      'node_modules/**',
      'src/**',
    ],
  },
  {
    name: 'config',
    patterns: ['*.{conf,cfg,ini,toml,yaml,yml,env,properties}', 'etc/**', 'config/**', '.*'],
  },
];

/** Returns a function ranking a path by the first class whose pattern matches (unmatched: rank of `data`, else 0). */
export function priorityRanker(classes: readonly PriorityClass[]): (path: string) => number {
  const compiled = classes.map((c, i) => ({ rank: i, res: c.patterns.map(globToRegExp) }));
  const dataRank = Math.max(
    0,
    classes.findIndex((c) => c.name === 'data'),
  );
  return (path) => {
    for (const c of compiled) if (c.res.some((r) => r.test(path))) return c.rank;
    return dataRank;
  };
}
