export { PLATFORM_GROUP, type PlatformDocument, readPlatformDirectory } from "./directory.js";
export { PlatformDocumentError } from "./errors.js";
