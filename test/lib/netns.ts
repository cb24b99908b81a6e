// Real hosts for tests and benchmarks: the harness lives in src/cli/netns-lab.ts, shared with the
// hosts demo (`understudy demo --part hosts`); tests and benches import it from here.
export {
  harnessNamespaces,
  NetnsLab,
  netnsSupport,
  sweepStaleNamespaces,
  type NetnsHost,
  type NetnsLabOptions,
} from '../../src/cli/netns-lab.js';
