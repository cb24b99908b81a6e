// sim: discrete-event simulator on a virtual clock — simulated instances, trace replay, the
// policies of src/policy against the Kubernetes HPA, static and oracle baselines, SPEC RG metrics.
export {
  HpaController,
  OracleController,
  PredictiveController,
  ReactivePoolController,
  StaticController,
} from './controllers.js';
export type { ControllerOutput, ScalingController, ServiceView } from './controllers.js';
export { combineMetrics, ElasticityAccumulator } from './elasticity-metrics.js';
export type { ElasticityMetrics } from './elasticity-metrics.js';
export { POLICY_NAMES, runScenario, traceToLoad } from './scenario.js';
export type { PolicyName, ScenarioOptions, ScenarioResult, ScenarioSettings } from './scenario.js';
export { simulate } from './simulator.js';
export type { SimSeries, SimServiceResult, SimServiceSpec, SimulationOptions } from './simulator.js';
export { parseTimestamp, parseTrace } from './trace.js';
export type { Trace } from './trace.js';
export { readTraceFile } from './trace-file.js';
export { renderPlotSvg } from './plot-svg.js';
export type { PlotOptions, PlotRun } from './plot-svg.js';
