/**
 * Thrown when a platform configuration file cannot be read or a document in it is not a
 * Kubernetes-style object; names the file and the document's position in it.
 */
export class PlatformDocumentError extends Error {
  override readonly name = "PlatformDocumentError";
  readonly code = "DV_PLATFORM_DOCUMENT";
  readonly file: string;
  readonly index: number;

  constructor(file: string, index: number, message: string, options?: ErrorOptions) {
    super(`${file} (document ${index + 1}): ${message}`, options);
    this.file = file;
    this.index = index;
  }
}
