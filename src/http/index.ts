export { type OpsRoutesOptions, type ReadinessCheck, registerOpsRoutes } from "./ops.js";
export {
  type CreateHttpServerOptions,
  createHttpServer,
  listenHttp,
  requestTraceparent,
} from "./server.js";
