export {
  deadLetterEvents,
  domainCommands,
  messages,
  simulatorRequests,
  taskEvents,
} from "./catalog.js";
export {
  simDriftRequest,
  simFaultRequest,
  type SimReply,
  simReply,
  type SimulatorRequests,
} from "./simulator.js";
export { type CommandSpec, commandBase, deadLetterEventData, eventBase } from "./domain.js";
export {
  ENVELOPE_SPEC_VERSION,
  type Envelope,
  envelopeSchema,
  receivedEnvelopeSchema,
} from "./envelope.js";
export {
  createEnvelope,
  type MessageContext,
  type MessageDefinition,
  MessageError,
  MessageRegistry,
} from "./registry.js";
export {
  buildSubject,
  DEAD_LETTER_CONSUMER,
  commandSubject,
  eventSubject,
  parseSubject,
  SERVICES,
  type Service,
  siteCommandFilter,
  siteSubject,
  SubjectError,
  type SubjectParts,
  taskSubject,
  WORKER_SERVICES,
  workerConsumer,
  type WorkerService,
} from "./subjects.js";
export { taskEventData } from "./tasks.js";
export { renderMessageCatalog } from "./catalog-docs.js";
export { childTraceparent, HEADERS, messageHeaders, traceIdOf } from "./trace.js";
