export { ApiFacade, type CallContext, type FacadeDeps, type ResourcePath } from "./facade.js";
export { PROBLEM_BASE, type ProblemBody, RequestError, toProblem } from "./problems.js";
export { API_VERSION, type ApiOptions, openApiDocument, registerApi } from "./server.js";
export { TaskWatcher } from "./task-watcher.js";
export { buildOpenApiDocument } from "./openapi-document.js";
