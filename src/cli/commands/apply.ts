import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { type Command, Option } from "commander";
import { dump as dumpYaml, loadAll } from "js-yaml";
import { z } from "zod";
import { Name, TENANT_KINDS, type TenantKind } from "../../contexts/inventory/index.js";
import { type ApiTarget, callApi, resolveTarget, withApiOptions } from "../client.js";
import { ApiError, CliError, ReportedError } from "../errors.js";
import { ExitCode } from "../exit-codes.js";
import {
  type ApiObject,
  collectionPath,
  type KindInfo,
  kindInfo,
  type ScopeFlags,
  withScopeOptions,
} from "./resources.js";
import { type Task, watchTask } from "./tasks.js";

/** What `dv apply`, `patch`, `label` and `edit` make an object look like, and where it lives. */
export interface Desired {
  readonly kind: KindInfo;
  readonly name: string;
  /** Where it lives, when the document says (by name or id); else the flags and the context. */
  readonly scope: { tenant?: string; project?: string; environment?: string };
  /** The labels it should have; absent: leave them as they are. */
  readonly labels?: Record<string, string> | undefined;
  /** The whole spec it should have (defaults filled in); absent: leave it as it is. */
  readonly spec?: Record<string, unknown> | undefined;
}

/** `none` sends the change; `client` only compares; `server` has the API check it (`dryRun=All`). */
type DryRun = "none" | "client" | "server";

/** What `dv apply` did to one object. */
type Outcome = "created" | "configured" | "unchanged";

// A document is the object as `dv get -o yaml` prints it: what the platform fills in is taken and
// ignored, so a listing can be edited and applied again.
const ScopeRef = z.string().min(1).max(63);
const DocumentMetadata = z.strictObject({
  name: Name,
  labels: z.record(z.string(), z.string()).optional(),
  tenant: ScopeRef.optional(),
  project: ScopeRef.optional(),
  environment: ScopeRef.optional(),
  tenantId: ScopeRef.optional(),
  projectId: ScopeRef.optional(),
  environmentId: ScopeRef.optional(),
  id: z.unknown().optional(),
  version: z.unknown().optional(),
  generation: z.unknown().optional(),
  createdAt: z.unknown().optional(),
  updatedAt: z.unknown().optional(),
  datacenter: z.unknown().optional(),
  deletionRequestedAt: z.unknown().optional(),
});
const Document = z.strictObject({
  kind: z.string(),
  metadata: DocumentMetadata,
  spec: z.record(z.string(), z.unknown()).optional(),
  status: z.unknown().optional(),
});

const TenancySpec = z.strictObject({ displayName: z.string().max(200).optional() });
const EnvironmentSpec = z.strictObject({
  datacenter: Name.meta({ description: "The datacenter its resources are placed in." }),
});

/** The spec schema of `kind`: the API's own for the infrastructure kinds. */
function specSchema(kind: KindInfo): z.ZodObject {
  if (kind.infra) return TENANT_KINDS[kind.singular as TenantKind].spec;
  return kind.singular === "environment" ? EnvironmentSpec : TenancySpec;
}

/** The fields allowed where an unknown one was found, for the error line. */
function allowedAt(path: readonly string[], kind: KindInfo | undefined): readonly string[] {
  if (path.length === 0) return ["kind", "metadata", "spec", "status"];
  if (path[0] === "metadata")
    return ["name", "labels", "tenant", "project", "environment", "(and what dv get prints)"];
  if (path[0] === "spec" && kind) return Object.keys(specSchema(kind).shape);
  return [];
}

/** The issues of a parse as one line: each field's path and what is allowed there. */
function issuesLine(
  error: z.ZodError,
  prefix: readonly string[],
  kind: KindInfo | undefined,
): string {
  return error.issues
    .map((issue) => {
      const path = [...prefix, ...issue.path.map(String)];
      const at = path.length ? `${path.join(".")}: ` : "";
      if (issue.code === "unrecognized_keys") {
        const allowed = allowedAt(path, kind);
        return `${at}unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}${allowed.length ? `; allowed: ${allowed.join(", ")}` : ""}`;
      }
      return `${at}${issue.message}`;
    })
    .join("; ");
}

/**
 * Checks one document of `dv apply` (or an edited object) and says what it asks for.
 *
 * @throws {CliError} a usage error naming the field and what is allowed there.
 */
export function checkDocument(raw: unknown): Desired {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw new CliError("not an object with kind, metadata and spec", ExitCode.Usage);
  const parsed = Document.safeParse(raw);
  if (!parsed.success) {
    const word = (raw as { kind?: unknown }).kind;
    let kind: KindInfo | undefined;
    try {
      kind = typeof word === "string" ? kindInfo(word.toLowerCase()) : undefined;
    } catch {
      // the kind is at fault too; the issues say so
    }
    throw new CliError(issuesLine(parsed.error, [], kind), ExitCode.Usage);
  }
  const { kind: word, metadata, spec } = parsed.data;
  let kind: KindInfo;
  try {
    kind = kindInfo(word.toLowerCase());
  } catch (err) {
    throw new CliError(`kind: ${(err as Error).message}`, ExitCode.Usage, { cause: err });
  }
  let checkedSpec: Record<string, unknown> | undefined;
  if (spec !== undefined) {
    const result = specSchema(kind).safeParse(spec);
    if (!result.success)
      throw new CliError(issuesLine(result.error, ["spec"], kind), ExitCode.Usage);
    checkedSpec = result.data;
  }
  const scope: { tenant?: string; project?: string; environment?: string } = {};
  const tenant = metadata.tenant ?? metadata.tenantId;
  const project = metadata.project ?? metadata.projectId;
  const environment = metadata.environment ?? metadata.environmentId;
  if (tenant && kind.scope !== "root") scope.tenant = tenant;
  if (project && (kind.scope === "project" || kind.scope === "environment"))
    scope.project = project;
  if (environment && kind.scope === "environment") scope.environment = environment;
  return { kind, name: metadata.name, scope, labels: metadata.labels, spec: checkedSpec };
}

/** `kind/name`, as every line of these commands names an object. */
const named = (kind: KindInfo, name: string) => `${kind.singular}/${name}`;

/** ` kind/name` of a document that was refused before it was understood, as far as it says. */
function namedRaw(raw: unknown): string {
  const doc = raw as { kind?: unknown; metadata?: { name?: unknown } } | null;
  const kind = typeof doc?.kind === "string" ? doc.kind.toLowerCase() : undefined;
  const name = typeof doc?.metadata?.name === "string" ? doc.metadata.name : undefined;
  return kind && name ? ` ${kind}/${name}` : "";
}

/** The flags with the document's scope over them. */
const scoped = (flags: ScopeFlags, desired: Desired): ScopeFlags => ({
  ...flags,
  ...desired.scope,
});

/** The API's answer to a write of an infrastructure kind: the task; or, dry, the object. */
type WriteAnswer = Task | ApiObject | undefined;
const taskOf = (answer: WriteAnswer): Task | undefined =>
  answer && "operation" in answer ? answer : undefined;

const dryQuery = (kind: KindInfo, dryRun: DryRun) =>
  dryRun === "server" && kind.infra ? "?dryRun=All" : "";

/**
 * Makes the live object look like `desired`: the labels and the spec that differ, in one PATCH
 * with the version read (`live`) as If-Match, so a change made in between is a conflict, never
 * overwritten.
 */
async function change(
  flags: ApiTarget,
  path: string,
  live: ApiObject,
  desired: Desired,
  dryRun: DryRun,
): Promise<{ changed: boolean; task?: Task | undefined }> {
  const { kind } = desired;
  const body: Record<string, unknown> = {};
  if (desired.labels && !isDeepStrictEqual(desired.labels, live.metadata.labels ?? {}))
    body.labels = desired.labels;
  if (desired.spec) {
    if (kind.infra) {
      if (!isDeepStrictEqual(desired.spec, live.spec ?? {})) body.spec = desired.spec;
    } else if (kind.singular === "environment") {
      const now = live.spec?.datacenter;
      if (desired.spec.datacenter !== now)
        throw new CliError(
          `spec.datacenter: an environment stays in its datacenter (${String(now)}); create another environment for ${String(desired.spec.datacenter)}`,
          ExitCode.Usage,
        );
    } else if (
      desired.spec.displayName !== undefined &&
      desired.spec.displayName !== live.spec?.displayName
    ) {
      body.displayName = desired.spec.displayName;
    }
  }
  if (Object.keys(body).length === 0) return { changed: false };
  if (dryRun === "client" || (dryRun === "server" && !kind.infra)) return { changed: true };
  const answer = await callApi<WriteAnswer>(
    flags,
    "PATCH",
    `${path}${dryQuery(kind, dryRun)}`,
    body,
    { "if-match": `"${live.metadata.version}"` },
  );
  return { changed: true, task: taskOf(answer) };
}

/** Creates the object `desired` describes. */
async function create(
  flags: ApiTarget,
  base: string,
  desired: Desired,
  dryRun: DryRun,
): Promise<Task | undefined> {
  const { kind, name, labels, spec } = desired;
  let body: Record<string, unknown>;
  if (kind.infra) body = { name, spec: spec ?? {} };
  else if (kind.singular === "environment") {
    if (spec?.datacenter === undefined)
      throw new CliError(
        "spec.datacenter: an environment needs its datacenter to be created (like dc1)",
        ExitCode.Usage,
      );
    body = { name, datacenter: spec.datacenter };
  } else
    body = { name, ...(spec?.displayName !== undefined ? { displayName: spec.displayName } : {}) };
  if (labels) body.labels = labels;
  if (dryRun === "client" || (dryRun === "server" && !kind.infra)) return undefined;
  return taskOf(
    await callApi<WriteAnswer>(flags, "POST", `${base}${dryQuery(kind, dryRun)}`, body),
  );
}

/** Creates the object, or changes the live one to match: what `dv apply` does per document. */
async function applyOne(
  flags: ScopeFlags,
  desired: Desired,
  dryRun: DryRun,
): Promise<{ outcome: Outcome; task?: Task | undefined }> {
  const base = await collectionPath(desired.kind, scoped(flags, desired));
  const path = `${base}/${encodeURIComponent(desired.name)}`;
  let live: ApiObject | undefined;
  try {
    live = await callApi<ApiObject>(flags, "GET", path);
  } catch (err) {
    // Absent: created below (a missing tenant, project or environment is named by the create).
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
  if (!live) return { outcome: "created", task: await create(flags, base, desired, dryRun) };
  const { changed, task } = await change(flags, path, live, desired, dryRun);
  return { outcome: changed ? "configured" : "unchanged", task };
}

/** One document to apply, and where it came from (`web.yaml#2`), for its lines. */
interface Source {
  readonly where: string;
  readonly raw: unknown;
}

/** The documents of one file (or stdin): `---`-separated YAML or JSON; a list's `items` each. */
function documentsOf(text: string, name: string): Source[] {
  let docs: unknown[];
  try {
    docs = loadAll(text);
  } catch (err) {
    throw new CliError(
      `${name}: not YAML or JSON: ${(err as Error).message.split("\n")[0] ?? ""}`,
      ExitCode.Usage,
    );
  }
  const out: Source[] = [];
  docs.forEach((doc, i) => {
    if (doc === null || doc === undefined) return;
    const where = `${name}#${i + 1}`;
    // A listing (dv get … -o yaml prints {items: […]}) or a bare list: each item is a document.
    const items = Array.isArray(doc)
      ? doc
      : typeof doc === "object" && !("kind" in doc) && "items" in doc && Array.isArray(doc.items)
        ? (doc.items as unknown[])
        : undefined;
    if (items) items.forEach((item, j) => out.push({ where: `${where}.items[${j}]`, raw: item }));
    else out.push({ where, raw: doc });
  });
  return out;
}

/** The documents `-f` names: a file, a directory's *.yaml, *.yml and *.json in name order, or `-`. */
async function readSources(paths: readonly string[]): Promise<Source[]> {
  const out: Source[] = [];
  for (const path of paths) {
    if (path === "-") {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      out.push(...documentsOf(Buffer.concat(chunks).toString("utf8"), "stdin"));
      continue;
    }
    let files: string[];
    try {
      files = (await stat(path)).isDirectory()
        ? (await readdir(path))
            .filter((f) => /\.(ya?ml|json)$/.test(f))
            .sort()
            .map((f) => join(path, f))
        : [path];
    } catch (err) {
      throw new CliError(
        `-f ${path}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : (err as Error).message}`,
        ExitCode.Usage,
      );
    }
    if (files.length === 0)
      throw new CliError(`-f ${path}: no *.yaml, *.yml or *.json files in it`, ExitCode.Usage);
    for (const file of files) out.push(...documentsOf(await readFile(file, "utf8"), file));
  }
  return out;
}

const exitOf = (err: unknown): ExitCode =>
  err instanceof CliError ? err.exitCode : ExitCode.Failed;
const reasonOf = (err: unknown): string =>
  err instanceof ApiError ? err.detail : err instanceof Error ? err.message : String(err);

/** What a line ends with: the task that carries the change out, or the kind of dry run. */
function suffix(kind: KindInfo, task: Task | undefined, dryRun: DryRun): string {
  if (dryRun === "server" && kind.infra) return " (server dry run)";
  if (dryRun !== "none") return " (dry run)";
  return task ? ` (task ${task.id})` : "";
}

/** Follows each task to its end (`--wait`); the worst outcome is the exit code. */
async function follow(
  flags: ScopeFlags,
  started: { tenant: string; task: Task }[],
): Promise<ExitCode> {
  let code: ExitCode = ExitCode.Ok;
  for (const { tenant, task } of started) {
    try {
      await watchTask(flags, tenant, task.id);
    } catch (err) {
      process.stderr.write(`dv: error: ${reasonOf(err)}\n`);
      if (code === ExitCode.Ok) code = exitOf(err);
    }
  }
  return code;
}

/** The tenant a document's task belongs to: its own, the flag's, or the context's. */
async function tenantOf(flags: ScopeFlags, desired: Desired): Promise<string> {
  return (
    desired.scope.tenant ??
    flags.tenant ??
    (desired.kind.scope === "root" ? desired.name : (await resolveTarget(flags)).context?.tenant) ??
    ""
  );
}

/**
 * Sends one object's change (`dv patch`, `dv label`), prints `<kind>/<name> <verb>` or
 * `unchanged`, and with `--wait` follows its task to the end.
 */
async function changeOne(
  flags: ScopeFlags & { dryRun: DryRun; wait?: boolean },
  path: string,
  live: ApiObject,
  desired: Desired,
  verb: string,
): Promise<void> {
  const { kind, name } = desired;
  const { changed, task } = await change(flags, path, live, desired, flags.dryRun);
  process.stdout.write(
    `${named(kind, name)} ${changed ? verb : "unchanged"}${changed ? suffix(kind, task, flags.dryRun) : ""}\n`,
  );
  if (flags.wait && task) {
    const code = await follow(flags, [{ tenant: await tenantOf(flags, desired), task }]);
    if (code !== ExitCode.Ok) throw new ReportedError(code);
  }
}

/** The live object `kind name` and its path. */
async function readLive(
  flags: ScopeFlags,
  kind: KindInfo,
  name: string,
): Promise<{ path: string; live: ApiObject }> {
  const path = `${await collectionPath(kind, flags)}/${encodeURIComponent(name)}`;
  return { path, live: await callApi<ApiObject>(flags, "GET", path) };
}

/** RFC 7386 JSON merge patch: `null` removes a field, objects merge, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target !== null && typeof target === "object" && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

/**
 * `key=value` sets, `key-` removes (`dv label`); a key that has another value already changes
 * only with `overwrite`, as with kubectl.
 *
 * @throws {CliError} a usage error for an argument of another shape or a value without `overwrite`.
 */
export function relabel(
  labels: Readonly<Record<string, string>>,
  args: readonly string[],
  overwrite: boolean,
): Record<string, string> {
  const out = { ...labels };
  for (const arg of args) {
    if (arg.endsWith("-") && !arg.includes("=")) {
      delete out[arg.slice(0, -1)];
      continue;
    }
    const eq = arg.indexOf("=");
    if (eq <= 0)
      throw new CliError(
        `"${arg}" is neither key=value (set a label) nor key- (remove it): dv label network web team=payments tier-`,
        ExitCode.Usage,
      );
    const key = arg.slice(0, eq);
    const value = arg.slice(eq + 1);
    const now = out[key];
    if (now !== undefined && now !== value && !overwrite)
      throw new CliError(
        `label "${key}" already has the value "${now}": pass --overwrite to change it`,
        ExitCode.Usage,
      );
    out[key] = value;
  }
  return out;
}

/** The editor `dv edit` opens: `$EDITOR`, else `$VISUAL`, else `vi`, as kubectl looks for one. */
function editorCommand(): string {
  // The user's editor, found the way every Unix tool finds it; not process configuration.
  // eslint-disable-next-line no-restricted-properties
  const env = process.env;
  return env.EDITOR?.trim() || env.VISUAL?.trim() || "vi";
}

/** Runs the editor on `file` (its command may carry arguments: `code --wait`) and waits for it. */
function runEditor(editor: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", `${editor} "$1"`, "dv-edit", file], { stdio: "inherit" });
    child.once("error", (err) =>
      reject(new CliError(`cannot start the editor "${editor}": ${err.message}`, ExitCode.Failed)),
    );
    child.once("exit", (code, signal) =>
      code === 0
        ? resolve()
        : reject(
            new CliError(
              `the editor "${editor}" exited with ${code ?? signal ?? "?"}: nothing was changed`,
              ExitCode.Failed,
            ),
          ),
    );
  });
}

const dryRunOption = () =>
  new Option(
    "--dry-run <mode>",
    "server: the API checks each change (networks, servers, clusters, buckets) and keeps nothing; client: compare only",
  )
    .choices(["none", "client", "server"])
    .default("none");

const waitOption = "follow each task the change started to its end; exit with the worst outcome";

/** Adds `dv apply`, `dv patch`, `dv label` and `dv edit`: changes, kubectl-style. */
export function registerApply(program: Command): void {
  const kindsHelp =
    "\nKinds: tenant, project, environment, network, server, cluster, bucket (as dv get names them).\n";

  withScopeOptions(
    withApiOptions(
      program
        .command("apply")
        .description(
          "create or change objects to match YAML or JSON documents, each with the version it read",
        )
        .requiredOption(
          "-f, --filename <path>",
          "a file, a directory (its *.yaml, *.yml and *.json in name order) or - for stdin; repeat it",
          (value: string, previous: string[] = []) => [...previous, value],
        )
        .addOption(dryRunOption())
        .option("--wait", waitOption),
    ),
  )
    .addHelpText(
      "after",
      `
A document is an object as \`dv get -o yaml\` prints it (what the platform fills in is ignored):

  kind: Network
  metadata:
    name: web
    labels: {team: payments}     # when present, the labels it will have
  spec:                          # when present, the whole spec (defaults for what it leaves out)
    prefixLength: 26

Several documents per file (---), and a listing's items, are applied in order. metadata.tenant,
.project and .environment (or the ids dv get prints) say where it lives; else the flags, then the
context. Each prints kind/name created, configured or unchanged; a document that is refused prints
one line, and the others are still applied.
${kindsHelp}
Examples:
  npx dv apply -f network.yaml
  npx dv apply -f config/tenants/ --dry-run=server
  npx dv get networks -o yaml | npx dv apply -f -
`,
    )
    .action(async (flags: ScopeFlags & { filename: string[]; dryRun: DryRun; wait?: boolean }) => {
      const sources = await readSources(flags.filename);
      if (sources.length === 0) throw new CliError("no documents to apply", ExitCode.Usage);
      let failed: ExitCode | undefined;
      const started: { tenant: string; task: Task }[] = [];
      for (const { where, raw } of sources) {
        let desired: Desired | undefined;
        try {
          desired = checkDocument(raw);
          const { outcome, task } = await applyOne(flags, desired, flags.dryRun);
          process.stdout.write(
            `${named(desired.kind, desired.name)} ${outcome}${suffix(desired.kind, task, flags.dryRun)}\n`,
          );
          if (task) started.push({ tenant: await tenantOf(flags, desired), task });
        } catch (err) {
          const what = desired ? ` ${named(desired.kind, desired.name)}` : namedRaw(raw);
          process.stderr.write(`dv: error: ${where}${what}: ${reasonOf(err)}\n`);
          failed ??= exitOf(err);
        }
      }
      const waited = flags.wait ? await follow(flags, started) : ExitCode.Ok;
      if (failed !== undefined || waited !== ExitCode.Ok) throw new ReportedError(failed ?? waited);
    });

  withScopeOptions(
    withApiOptions(
      program
        .command("patch")
        .description("change an object's labels or spec with a JSON merge patch (RFC 7386)")
        .argument("<kind>", "its kind")
        .argument("<name>", "its name")
        .requiredOption(
          "-p, --patch <json>",
          'the merge patch, on the object as dv get prints it: {"spec": {…}} or {"metadata": {"labels": {…}}}; null removes a field',
        )
        .addOption(dryRunOption())
        .option("--wait", waitOption),
    ),
  )
    .addHelpText(
      "after",
      `${kindsHelp}
Only metadata.labels and spec change; a spec field left out keeps its value.

Examples:
  npx dv patch network web -p '{"spec":{"prefixLength":25}}' --wait
  npx dv patch project shop -p '{"spec":{"displayName":"Web shop"},"metadata":{"labels":{"old":null}}}'
`,
    )
    .action(
      async (
        word: string,
        name: string,
        flags: ScopeFlags & { patch: string; dryRun: DryRun; wait?: boolean },
      ) => {
        const kind = kindInfo(word);
        let patch: unknown;
        try {
          patch = JSON.parse(flags.patch);
        } catch (err) {
          throw new CliError(`--patch is not JSON: ${(err as Error).message}`, ExitCode.Usage);
        }
        const extra =
          patch !== null && typeof patch === "object" && !Array.isArray(patch)
            ? Object.entries(patch as Record<string, unknown>).flatMap(([key, value]) =>
                key === "spec"
                  ? []
                  : key === "metadata" &&
                      value !== null &&
                      typeof value === "object" &&
                      Object.keys(value).every((k) => k === "labels")
                    ? []
                    : [key],
              )
            : ["(not an object)"];
        if (extra.length > 0)
          throw new CliError(
            `--patch: ${extra.join(", ")} cannot change; a patch changes metadata.labels and spec only, like {"spec":{"prefixLength":25}}`,
            ExitCode.Usage,
          );
        const { path, live } = await readLive(flags, kind, name);
        const merged = mergePatch(
          {
            kind: live.kind,
            metadata: { name, labels: live.metadata.labels ?? {} },
            spec: live.spec ?? {},
          },
          patch,
        );
        await changeOne(flags, path, live, checkDocument(merged), "patched");
      },
    );

  withScopeOptions(
    withApiOptions(
      program
        .command("label")
        .description("set (key=value) or remove (key-) an object's labels")
        .argument("<kind>", "its kind")
        .argument("<name>", "its name")
        .argument("<labels...>", "key=value to set, key- to remove")
        .option("--overwrite", "allow changing a label that already has another value")
        .addOption(dryRunOption())
        .option("--wait", waitOption),
    ),
  )
    .addHelpText(
      "after",
      `${kindsHelp}
Examples:
  npx dv label network web team=payments tier=frontend
  npx dv label network web team=checkout --overwrite
  npx dv label network web tier-
`,
    )
    .action(
      async (
        word: string,
        name: string,
        args: string[],
        flags: ScopeFlags & { overwrite?: boolean; dryRun: DryRun; wait?: boolean },
      ) => {
        const kind = kindInfo(word);
        const { path, live } = await readLive(flags, kind, name);
        const labels = relabel(live.metadata.labels ?? {}, args, flags.overwrite === true);
        await changeOne(flags, path, live, { kind, name, scope: {}, labels }, "labeled");
      },
    );

  withScopeOptions(
    withApiOptions(
      program
        .command("edit")
        .description(
          "edit an object as YAML in $EDITOR (else $VISUAL, else vi) and apply its labels and spec",
        )
        .argument("<kind>", "its kind")
        .argument("<name>", "its name")
        .option("--wait", waitOption),
    ),
  )
    .addHelpText(
      "after",
      `${kindsHelp}
The object is opened as dv get -o yaml prints it; metadata.labels and spec are applied with the
version it read (If-Match), so a change made meanwhile is refused, not overwritten. A file saved
unchanged changes nothing. When the API refuses the edit, dv says why and keeps your file.

Examples:
  npx dv edit network web
  EDITOR=nano npx dv edit environment prod
`,
    )
    .action(async (word: string, name: string, flags: ScopeFlags & { wait?: boolean }) => {
      const kind = kindInfo(word);
      const { path, live } = await readLive(flags, kind, name);
      const dir = await mkdtemp(join(tmpdir(), "dv-edit-"));
      const file = join(dir, `${kind.singular}-${name}.yaml`);
      const original = `# Edit the ${kind.singular} and save it; dv applies metadata.labels and spec when the editor
# closes, as version ${live.metadata.version} (a change made meanwhile is refused). The rest is
# the platform's. Saved unchanged, or emptied, nothing changes.
${dumpYaml(live, { noRefs: true, lineWidth: 120 })}`;
      await writeFile(file, original, { mode: 0o600 });
      const cancelled = async () => {
        await rm(dir, { recursive: true, force: true });
        process.stdout.write("Edit cancelled, no changes made.\n");
      };
      try {
        await runEditor(editorCommand(), file);
      } catch (err) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
      const edited = await readFile(file, "utf8");
      const body = edited.replace(/^#.*$/gm, "").trim();
      if (edited === original || body === "") return cancelled();
      let result: { changed: boolean; task?: Task | undefined };
      let desired: Desired;
      try {
        const docs = loadAll(body).filter((d) => d !== null && d !== undefined);
        if (docs.length !== 1)
          throw new CliError(
            `the file holds ${docs.length} documents, not the one edited`,
            ExitCode.Usage,
          );
        desired = checkDocument(docs[0]);
        if (desired.kind !== kind || desired.name !== name)
          throw new CliError(
            `kind and metadata.name cannot change (${named(kind, name)}); to make another, use dv apply`,
            ExitCode.Usage,
          );
        result = await change(flags, path, live, desired, "none");
      } catch (err) {
        throw new CliError(
          `${named(kind, name)} not changed: ${reasonOf(err)}; your edit is kept in ${file}`,
          exitOf(err),
          { cause: err },
        );
      }
      if (!result.changed) return cancelled();
      await rm(dir, { recursive: true, force: true });
      process.stdout.write(`${named(kind, name)} edited${suffix(kind, result.task, "none")}\n`);
      if (flags.wait && result.task) {
        const code = await follow(flags, [
          { tenant: await tenantOf(flags, desired), task: result.task },
        ]);
        if (code !== ExitCode.Ok) throw new ReportedError(code);
      }
    });
}
