// The JetStream adapter: connection, streams and consumers, the outbox relay, and the
// processor of JetStream's own advisories (deliveries that ran out).
export { type AdvisoryProcessorOptions, AdvisoryProcessor } from "./advisories.js";
export { type ConnectNatsOptions, connectNats } from "./connect.js";
export { resourceEventSource, resourceKeyOf } from "./resource-events.js";
export { OutboxRelay, type OutboxRelayOptions } from "./relay.js";
export {
  consumerConfigs,
  DEFAULT_TOPOLOGY,
  ensureTopology,
  STREAMS,
  streamConfigs,
  type TopologyNames,
  type TopologyOptions,
} from "./topology.js";
