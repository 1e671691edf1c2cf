export { packageRoot } from "./paths.js";
