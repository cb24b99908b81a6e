export { RouterNode } from './router-node.js';
export type { RouterNodeOptions, RouterNodeStats } from './router-node.js';
export {
  routeState,
  parseInstance,
  parseIntent,
  parseRouting,
  parseRegistration,
  parseHostAddress,
  HOSTS_PREFIX,
  ROUTER_PREFIX,
  INSTANCE_PREFIX,
  PROMOTION_PREFIX,
  ROUTING_PREFIX,
  SERVICE_PREFIX,
} from './route-state.js';
export type {
  RouteInput,
  RouteState,
  RouteTarget,
  RoutedInstance,
  RoutedIntent,
  RoutingRecord,
  RouterRegistration,
  PauseCause,
} from './route-state.js';
export { routerOptionsOf, parseStoredSpec, DEFAULT_ROUTER_LISTEN } from './router-spec.js';
