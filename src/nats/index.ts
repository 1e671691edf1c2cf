export { type ConnectNatsOptions, connectNats } from "./connect.js";
export {
  consumerConfigs,
  DEAD_LETTER_CONSUMER,
  DEFAULT_TOPOLOGY,
  ensureTopology,
  STREAMS,
  streamConfigs,
  type TopologyNames,
  type TopologyOptions,
  workerConsumer,
} from "./topology.js";
