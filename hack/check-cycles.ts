// Fails when any two of the project's own modules import each other, directly or through others,
// type-only imports included. Run by `npm run lint`.
//
// Why not only import-x/no-cycle: that rule skips every `import type` (and every import whose
// specifiers are all `type`) by design, with no option to follow them, so cycles closed by a
// type-only edge pass the lint. Here every edge counts: `import`, `import type`, `export … from`,
// `import x = require()`, `import("…")` (dynamic) and `import("…").T` (type position). A cycle
// is a cycle whichever kind of edge closes it: it still couples the modules both ways.
//
//   npx tsx hack/check-cycles.ts [tsconfig.json]
//
// It parses each file on its own (no type check) and resolves specifiers with TypeScript's own
// module resolution under the tsconfig's options, so it sees what `tsc` sees, in a few seconds.
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/** How one module names another. */
export type ImportKind = "value" | "type" | "dynamic";

/** One import of a project module by another. */
export interface ImportEdge {
  readonly from: string;
  readonly to: string;
  readonly specifier: string;
  readonly line: number;
  readonly kind: ImportKind;
}

/** One strongly connected component of the import graph and a shortest cycle through it. */
export interface ImportCycle {
  /** Every file in the component, sorted. */
  readonly files: readonly string[];
  /** A shortest cycle through the component's first file, as the edges that make it. */
  readonly path: readonly ImportEdge[];
}

/** Options for {@link findImportCycles}. */
export interface FindImportCyclesOptions {
  /** The files of the project; imports of files outside it (node_modules) are not followed. */
  readonly files: readonly string[];
  /** The compiler options to resolve specifiers with (moduleResolution, paths, …). */
  readonly compilerOptions: ts.CompilerOptions;
  /** Reads a file; `ts.sys.readFile` unless a test gives another. */
  readonly readFile?: (path: string) => string | undefined;
}

/**
 * Returns every import edge from `file` (given as `text`), unresolved: the specifier, the line
 * and whether it is a type-only, a dynamic or a value import.
 */
function importsOf(
  file: string,
  text: string,
): { specifier: string; line: number; kind: ImportKind }[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: { specifier: string; line: number; kind: ImportKind }[] = [];
  const add = (node: ts.Node, literal: ts.Node | undefined, kind: ImportKind): void => {
    if (literal !== undefined && ts.isStringLiteralLike(literal)) {
      const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
      found.push({ specifier: literal.text, line, kind });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            clause.namedBindings !== undefined &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((element) => element.isTypeOnly)));
      add(node, node.moduleSpecifier, typeOnly ? "type" : "value");
    } else if (ts.isExportDeclaration(node)) {
      add(node, node.moduleSpecifier, node.isTypeOnly ? "type" : "value");
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference)
    ) {
      add(node, node.moduleReference.expression, node.isTypeOnly ? "type" : "value");
    } else if (ts.isImportTypeNode(node)) {
      const argument = node.argument;
      if (ts.isLiteralTypeNode(argument)) add(node, argument.literal, "type");
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0], "dynamic");
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/**
 * Builds the import graph of `files` and returns its cycles, one per strongly connected
 * component with more than one file (or a file that imports itself), in a stable order.
 */
export function findImportCycles(options: FindImportCyclesOptions): ImportCycle[] {
  const readFile = options.readFile ?? ((path: string) => ts.sys.readFile(path));
  const project = new Set(options.files.map((file) => resolve(file)));
  const host: ts.ModuleResolutionHost = {
    fileExists: (path) => project.has(resolve(path)) || ts.sys.fileExists(path),
    readFile: (path) => readFile(path),
  };
  const edges = new Map<string, ImportEdge[]>();
  for (const file of [...project].sort()) {
    const text = readFile(file);
    if (text === undefined) throw new Error(`cannot read ${file}`);
    const out: ImportEdge[] = [];
    for (const { specifier, line, kind } of importsOf(file, text)) {
      const resolved = ts.resolveModuleName(
        specifier,
        file,
        options.compilerOptions,
        host,
      ).resolvedModule;
      if (resolved === undefined || resolved.isExternalLibraryImport === true) continue;
      const to = resolve(resolved.resolvedFileName);
      if (project.has(to)) out.push({ from: file, to, specifier, line, kind });
    }
    edges.set(file, out);
  }
  return stronglyConnected(edges)
    .filter(
      (component) =>
        component.length > 1 ||
        (edges.get(component[0] as string) ?? []).some((edge) => edge.to === component[0]),
    )
    .map((component) => {
      const files = [...component].sort();
      return { files, path: shortestCycle(files[0] as string, new Set(files), edges) };
    })
    .sort((a, b) => (a.files[0] as string).localeCompare(b.files[0] as string));
}

/** Tarjan's algorithm, iterative so a deep import chain cannot overflow the stack. */
function stronglyConnected(edges: ReadonlyMap<string, readonly ImportEdge[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;
  for (const root of edges.keys()) {
    if (index.has(root)) continue;
    const work: { node: string; edge: number }[] = [{ node: root, edge: 0 }];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1] as { node: string; edge: number };
      const out = edges.get(frame.node) ?? [];
      if (frame.edge < out.length) {
        const to = (out[frame.edge++] as ImportEdge).to;
        if (!index.has(to)) {
          index.set(to, next);
          low.set(to, next++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, edge: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node) as number, index.get(to) as number));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined) {
        low.set(
          parent.node,
          Math.min(low.get(parent.node) as number, low.get(frame.node) as number),
        );
      }
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        for (;;) {
          const member = stack.pop() as string;
          onStack.delete(member);
          component.push(member);
          if (member === frame.node) break;
        }
        components.push(component);
      }
    }
  }
  return components;
}

/** A shortest path of edges from `start` back to itself, staying inside `within`. */
function shortestCycle(
  start: string,
  within: ReadonlySet<string>,
  edges: ReadonlyMap<string, readonly ImportEdge[]>,
): ImportEdge[] {
  const via = new Map<string, ImportEdge>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const node = queue[head] as string;
    for (const edge of edges.get(node) ?? []) {
      if (!within.has(edge.to)) continue;
      if (edge.to === start) {
        const path = [edge];
        for (let at = node; at !== start;) {
          const back = via.get(at) as ImportEdge;
          path.unshift(back);
          at = back.from;
        }
        return path;
      }
      if (!via.has(edge.to)) {
        via.set(edge.to, edge);
        queue.push(edge.to);
      }
    }
  }
  return [];
}

/** Renders the cycles for a person: each component's files, then one cycle edge by edge. */
export function formatImportCycles(cycles: readonly ImportCycle[], root: string): string {
  const name = (file: string): string => relative(root, file);
  return cycles
    .map((cycle, n) => {
      const lines = [`cycle ${n + 1}: ${cycle.files.length} files`];
      for (const file of cycle.files) lines.push(`    ${name(file)}`);
      lines.push("  for example:");
      for (const edge of cycle.path) {
        const kind = edge.kind === "value" ? "" : ` (${edge.kind})`;
        lines.push(`    ${name(edge.from)}:${edge.line} -> ${name(edge.to)}${kind}`);
      }
      return lines.join("\n");
    })
    .join("\n\n");
}

/** Reads a tsconfig and returns its files and compiler options; throws on a config error. */
export function readProject(configPath: string): {
  files: string[];
  compilerOptions: ts.CompilerOptions;
} {
  const parsed = ts.getParsedCommandLineOfConfigFile(configPath, undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"));
    },
  });
  if (parsed === undefined) throw new Error(`cannot read ${configPath}`);
  if (parsed.errors.length > 0) {
    const messages = parsed.errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    throw new Error(messages.join("\n"));
  }
  return { files: parsed.fileNames, compilerOptions: parsed.options };
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const configPath = resolve(process.argv[2] ?? "tsconfig.json");
  const root = dirname(configPath);
  const { files, compilerOptions } = readProject(configPath);
  const cycles = findImportCycles({ files, compilerOptions });
  if (cycles.length > 0) {
    process.stderr.write(`${formatImportCycles(cycles, root)}\n\n`);
    process.stderr.write(
      `check-cycles: ${cycles.length} import cycle(s) among the ${files.length} files of ${relative(process.cwd(), configPath) || configPath}` +
        " (type-only imports count; move what both sides need to a module both import)\n",
    );
    process.exit(1);
  }
  process.stdout.write(`check-cycles: no import cycle among ${files.length} files\n`);
}
