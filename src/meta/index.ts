export { packageRoot, packageVersion } from "./paths.js";
