export { type OpsRoutesOptions, type ReadinessCheck, registerOpsRoutes } from "./ops.js";
export { type CreateHttpServerOptions, createHttpServer, listenHttp } from "./server.js";
