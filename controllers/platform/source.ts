import { type FSWatcher, watch } from "node:fs";
import type {
  CustomObjectsApi,
  Informer,
  KubeConfig,
  KubernetesObject,
  ObjectCache,
} from "@kubernetes/client-node";
import { GROUP, KINDS, kindOf, VERSION } from "../../crds/index.js";
import type { Logger } from "../../src/observability/index.js";
import { readPlatformDirectory } from "../../src/platform-config/index.js";

/** The finalizer that keeps a platform object until the platform no longer depends on it. */
export const PLATFORM_FINALIZER = "platform.dataverket.io/in-use";

/** A platform object as a controller sees it, from a cluster or a directory. */
export interface PlatformObject {
  readonly kind: string;
  readonly name: string;
  readonly generation: number;
  readonly spec: unknown;
  readonly deleting: boolean;
  readonly finalizers: readonly string[];
  readonly status: Record<string, unknown>;
}

/** The key of an object in the work queue. */
export const platformKey = (kind: string, name: string): string => `${kind}/${name}`;

/** Where platform objects come from, and where their status goes. */
export interface PlatformSource {
  readonly name: "kubernetes" | "directory";
  /** Whether deletion waits for the controller (finalizers); a directory cannot hold a file back. */
  readonly holdsDeletion: boolean;
  /** Starts watching; `changed` gets the key of every object added, changed or gone. */
  start(changed: (key: string) => void): Promise<void>;
  stop(): Promise<void>;
  get(kind: string, name: string): PlatformObject | undefined;
  keys(): string[];
  writeStatus(object: PlatformObject, status: Record<string, unknown>): Promise<void>;
  setFinalizer(object: PlatformObject, present: boolean): Promise<void>;
}

interface CustomObject extends KubernetesObject {
  spec?: unknown;
  status?: Record<string, unknown>;
}

const asObject = (kind: string, o: CustomObject): PlatformObject => ({
  kind,
  name: o.metadata?.name ?? "",
  generation: o.metadata?.generation ?? 1,
  spec: o.spec,
  deleting: Boolean(o.metadata?.deletionTimestamp),
  finalizers: o.metadata?.finalizers ?? [],
  status: o.status ?? {},
});

/**
 * Platform objects from a Kubernetes cluster, through one informer per kind (list, then watch
 * from the list's resourceVersion). A watch that ends is resumed from the last resourceVersion
 * seen, so nothing is lost and nothing unchanged is delivered again; a watch whose
 * resourceVersion expired (410 Gone) relists, and the cache reports only objects that differ
 * from what it held. An informer that fails (API server unreachable) is restarted with backoff.
 */
export class KubernetesPlatformSource implements PlatformSource {
  readonly name = "kubernetes" as const;
  readonly holdsDeletion = true;
  #api: CustomObjectsApi | undefined;
  readonly #kc: KubeConfig;
  readonly #log: Logger;
  readonly #informers = new Map<string, Informer<CustomObject> & ObjectCache<CustomObject>>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;

  constructor(kc: KubeConfig, log: Logger) {
    this.#kc = kc;
    this.#log = log;
  }

  async start(changed: (key: string) => void): Promise<void> {
    // Loaded here, not at import: the client weighs most of a process's start-up, and only a
    // controller that reads a cluster needs it.
    const { CustomObjectsApi, makeInformer } = await import("@kubernetes/client-node");
    const api = this.#kc.makeApiClient(CustomObjectsApi);
    this.#api = api;
    for (const kind of KINDS) {
      const informer = makeInformer<CustomObject>(
        this.#kc,
        `/apis/${GROUP}/${VERSION}/${kind.plural}`,
        () =>
          api.listClusterCustomObject({
            group: GROUP,
            version: VERSION,
            plural: kind.plural,
          }),
      );
      const enqueue = (o: CustomObject) => changed(platformKey(kind.kind, o.metadata?.name ?? ""));
      informer.on("add", enqueue);
      informer.on("update", enqueue);
      informer.on("delete", enqueue);
      let failures = 0;
      let lastFailure = 0;
      // Resumes the informer after a failure, with backoff (0.5 s doubling to 30 s, back to the
      // start after a minute without failures); a resume that fails at once schedules the next.
      const resume = (err: unknown): void => {
        if (this.#stopped) return;
        if (Date.now() - lastFailure > 60_000) failures = 0;
        lastFailure = Date.now();
        failures++;
        const delay = Math.min(30_000, 500 * 2 ** Math.min(failures - 1, 6));
        this.#log.warn({ err, kind: kind.kind, retryInMs: delay }, "watch failed; resuming");
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          if (!this.#stopped) informer.start().catch(resume);
        }, delay);
        this.#timers.add(timer);
      };
      informer.on("error", resume);
      this.#informers.set(kind.kind, informer);
    }
    // The first list of every kind, before the controller starts.
    await Promise.all([...this.#informers.values()].map((i) => i.start()));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    await Promise.all([...this.#informers.values()].map((i) => i.stop()));
  }

  get(kind: string, name: string): PlatformObject | undefined {
    const o = this.#informers.get(kind)?.get(name);
    return o ? asObject(kind, o) : undefined;
  }

  keys(): string[] {
    return [...this.#informers].flatMap(([kind, i]) =>
      i.list().map((o) => platformKey(kind, o.metadata?.name ?? "")),
    );
  }

  #raw(object: PlatformObject): CustomObject {
    const o = this.#informers.get(object.kind)?.get(object.name);
    if (!o) throw new Error(`${object.kind} ${object.name} is gone`);
    return o;
  }

  #client(): CustomObjectsApi {
    if (!this.#api) throw new Error("the Kubernetes platform source is not started");
    return this.#api;
  }

  async writeStatus(object: PlatformObject, status: Record<string, unknown>): Promise<void> {
    const plural = kindOf(object.kind)?.plural ?? "";
    // A PUT naming the resourceVersion the cache holds: a stale cache gets 409 and the pass
    // is retried once the watch delivered the newer object.
    const body = { ...this.#raw(object), status };
    await this.#client().replaceClusterCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      plural,
      name: object.name,
      body,
    });
  }

  async setFinalizer(object: PlatformObject, present: boolean): Promise<void> {
    const plural = kindOf(object.kind)?.plural ?? "";
    const raw = this.#raw(object);
    const others = (raw.metadata?.finalizers ?? []).filter((f) => f !== PLATFORM_FINALIZER);
    const body = {
      ...raw,
      metadata: { ...raw.metadata, finalizers: present ? [...others, PLATFORM_FINALIZER] : others },
    };
    await this.#client().replaceClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural,
      name: object.name,
      body,
    });
  }
}

/**
 * Platform objects from a directory of the same YAML a GitOps tool would apply (the embedded
 * default of `dv dev`): read at start and again whenever a file changes. A file that does not
 * parse is reported and the previous contents are kept. An object gone from the directory is
 * reported as gone. Generations count spec changes, as the API server's do.
 */
export class DirectoryPlatformSource implements PlatformSource {
  readonly name = "directory" as const;
  readonly holdsDeletion = false;
  readonly #dir: string;
  readonly #log: Logger;
  readonly #debounceMs: number;
  #objects = new Map<string, PlatformObject & { signature: string }>();
  readonly #statuses = new Map<string, Record<string, unknown>>();
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reading: Promise<void> = Promise.resolve();

  constructor(dir: string, log: Logger, options: { debounceMs?: number } = {}) {
    this.#dir = dir;
    this.#log = log;
    this.#debounceMs = options.debounceMs ?? 200;
  }

  async start(changed: (key: string) => void): Promise<void> {
    await this.#read(changed);
    this.#watcher = watch(this.#dir, { recursive: true }, () => {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => {
        this.#reading = this.#reading.then(() => this.#read(changed));
      }, this.#debounceMs);
    });
    this.#watcher.on("error", (err) =>
      this.#log.warn({ err, dir: this.#dir }, "cannot watch the directory"),
    );
  }

  async #read(changed: (key: string) => void): Promise<void> {
    let docs;
    try {
      docs = await readPlatformDirectory(this.#dir);
    } catch (err) {
      this.#log.error(
        { dir: this.#dir, err: err instanceof Error ? err.message : String(err) },
        "platform configuration not applied: fix the file; the previous contents stay in force",
      );
      return;
    }
    const next = new Map<string, PlatformObject & { signature: string }>();
    for (const doc of docs) {
      const key = platformKey(doc.kind, doc.name);
      const spec = (doc.raw as { spec?: unknown }).spec;
      const signature = JSON.stringify(spec ?? null);
      const before = this.#objects.get(key);
      const generation = !before
        ? doc.generation
        : before.signature === signature
          ? before.generation
          : before.generation + 1;
      next.set(key, {
        kind: doc.kind,
        name: doc.name,
        generation,
        spec,
        deleting: false,
        finalizers: [],
        status: this.#statuses.get(key) ?? {},
        signature,
      });
      if (!before || before.signature !== signature) changed(key);
    }
    for (const key of this.#objects.keys()) if (!next.has(key)) changed(key);
    this.#objects = next;
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#watcher?.close();
    await this.#reading;
  }

  get(kind: string, name: string): PlatformObject | undefined {
    const o = this.#objects.get(platformKey(kind, name));
    if (!o) return undefined;
    return { ...o, status: this.#statuses.get(platformKey(kind, name)) ?? {} };
  }

  keys(): string[] {
    return [...this.#objects.keys()];
  }

  writeStatus(object: PlatformObject, status: Record<string, unknown>): Promise<void> {
    this.#statuses.set(platformKey(object.kind, object.name), status);
    return Promise.resolve();
  }

  setFinalizer(): Promise<void> {
    return Promise.resolve();
  }
}
