import { defineDeadLetterEvents, defineDomainMessages } from "./domain.js";
import { MessageRegistry } from "./registry.js";
import { defineSimulatorRequests } from "./simulator.js";
import { defineTaskEvents } from "./tasks.js";

/** Every message type of the platform, shared by producers and consumers. */
export const messages = new MessageRegistry();

/** `task.created` … `task.cancelled` on `dv.task.evt.<verb>`. */
export const taskEvents = defineTaskEvents(messages);

/** The domain services' commands and the events that answer them, by service and action. */
export const domainCommands = defineDomainMessages(messages);

/** Sentral's dead-letter events. */
export const deadLetterEvents = defineDeadLetterEvents(messages);

/** Request/reply controls of the workers' simulated drivers, by service (tests and demos). */
export const simulatorRequests = defineSimulatorRequests(messages);
