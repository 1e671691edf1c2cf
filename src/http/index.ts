export {
  clientErrorProblem,
  PROBLEM_BASE,
  PROBLEM_MEDIA_TYPE,
  problem,
  type ProblemBody,
} from "./problem.js";
export { type OpsRoutesOptions, type ReadinessCheck, registerOpsRoutes } from "./ops.js";
export {
  type CreateHttpServerOptions,
  createHttpServer,
  listenHttp,
  requestTraceparent,
} from "./server.js";
