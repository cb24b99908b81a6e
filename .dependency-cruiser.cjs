// Encodes the module table of docs/ARCHITECTURE.md: which module of src/ may import which.
// `errors` is the shared base every module may use. Keep this table and the doc in step.
/** @type {Record<string, string[]>} */
const allowed = {
  errors: [],
  config: [],
  store: [],
  health: [],
  telemetry: [],
  sync: ['telemetry'],
  router: ['health', 'telemetry'],
  replication: ['router', 'health', 'telemetry'],
  // a router that follows the store: no control plane needed to keep serving.
  'router-node': ['router', 'store', 'config'],
  runtime: ['config', 'telemetry'],
  agent: ['runtime', 'sync', 'health', 'telemetry', 'config'],
  predict: ['telemetry'],
  policy: ['predict', 'telemetry'],
  sim: ['policy', 'predict', 'telemetry'],
  // control reaches hosts only through agent (control → agent → runtime): no runtime, no sync.
  control: [
    'config',
    'store',
    'agent',
    'replication',
    'router',
    'router-node',
    'health',
    'telemetry',
    'predict',
    'policy',
  ],
  api: ['control', 'config', 'store', 'telemetry'],
  cli: [
    'api',
    'control',
    'agent',
    'config',
    'store',
    'router-node',
    'sim',
    'predict',
    'policy',
    'telemetry',
    'runtime',
    'sync',
  ],
  web: ['api'],
};
const modules = Object.keys(allowed);

const layering = modules.map((m) => {
  const forbiddenTargets = modules.filter((t) => t !== m && t !== 'errors' && !allowed[m].includes(t));
  return {
    name: `layer-${m}`,
    comment: `${m} may import only: errors${allowed[m].length ? ', ' + allowed[m].join(', ') : ''}`,
    severity: 'error',
    from: { path: `^src/${m}/` },
    to: forbiddenTargets.length ? { path: `^src/(${forbiddenTargets.join('|')})/` } : { path: '^$' },
  };
});

module.exports = {
  forbidden: [
    ...layering,
    {
      name: 'control-no-host-access',
      comment:
        'control never touches the file system, processes or the host itself: that is what an Agent (src/agent) is for.',
      severity: 'error',
      from: { path: '^src/control/', pathNot: '\\.test\\.ts$' },
      to: { dependencyTypes: ['core'], path: '^(node:)?(fs|fs/promises|child_process|os)$' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'index-only',
      comment: 'Import another module only through its index.ts.',
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/([^/]+)/.+', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] },
    },
    {
      name: 'no-orphans-in-src',
      severity: 'warn',
      from: {
        orphan: true,
        path: '^src/',
        pathNot: ['\\.test\\.ts$', '^src/[^/]+/index\\.ts$', '\\.d\\.ts$'],
      },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.test\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
