import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { loadAll, YAMLException } from "js-yaml";
import { z } from "zod";
import { PlatformDocumentError } from "./errors.js";

/** The group every Dataverket platform kind belongs to. */
export const PLATFORM_GROUP = "platform.dataverket.io";

/** A platform object read from a file: the fields every Kubernetes object has, spec untouched. */
export interface PlatformDocument {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly generation: number;
  readonly raw: Readonly<Record<string, unknown>>;
  /** Path relative to the directory, for messages. */
  readonly file: string;
}

const objectShape = z.looseObject({
  apiVersion: z.string().startsWith(`${PLATFORM_GROUP}/`, {
    error: `must be ${PLATFORM_GROUP}/<version>`,
  }),
  kind: z.string().min(1),
  metadata: z.looseObject({ name: z.string().min(1), generation: z.number().int().optional() }),
});

async function yamlFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name) && e.name !== "kustomization.yaml")
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/**
 * Reads every `*.yaml` under `dir` (recursively, `kustomization.yaml` excepted) as the same
 * documents a GitOps tool would apply, and checks that each is an object of our API group.
 *
 * @throws {PlatformDocumentError} naming the file and document that is not valid.
 */
export async function readPlatformDirectory(dir: string): Promise<PlatformDocument[]> {
  const documents: PlatformDocument[] = [];
  for (const path of await yamlFiles(dir)) {
    const file = relative(dir, path);
    let parsed: unknown[];
    try {
      parsed = loadAll(await readFile(path, "utf8"), { filename: file });
    } catch (err) {
      const reason = err instanceof YAMLException ? err.reason : String(err);
      throw new PlatformDocumentError(file, 0, `not valid YAML: ${reason}`, { cause: err });
    }
    parsed.forEach((doc, index) => {
      if (doc === null || doc === undefined) return;
      const result = objectShape.safeParse(doc);
      if (!result.success) {
        const issue = result.error.issues[0];
        const field = issue?.path.join(".") || "(document)";
        throw new PlatformDocumentError(file, index, `${field}: ${issue?.message ?? "invalid"}`);
      }
      documents.push({
        apiVersion: result.data.apiVersion,
        kind: result.data.kind,
        name: result.data.metadata.name,
        generation: result.data.metadata.generation ?? 1,
        raw: result.data,
        file,
      });
    });
  }
  return documents;
}
