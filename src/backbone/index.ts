export {
  type DeadLetterInput,
  DeadLetterService,
  type DeadLetterServiceDeps,
} from "./dead-letters.js";
export { OutboxRelay, type OutboxRelayOptions } from "./relay.js";
export { childTraceparent, HEADERS, messageHeaders, traceIdOf } from "./trace.js";
export { AdvisoryProcessor, type AdvisoryProcessorOptions } from "./advisories.js";
