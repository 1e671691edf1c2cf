export { type ConnectNatsOptions, connectNats } from "./connect.js";
