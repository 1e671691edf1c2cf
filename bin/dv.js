#!/usr/bin/env node
// `dv` launcher. In a checkout (sources and tsx present) it runs the TypeScript sources through
// tsx, so `npx dv` never runs a stale build; in an installed package it runs the build in dist/.
import { existsSync } from "node:fs";

const source = new URL("../src/cli/main.ts", import.meta.url);
const built = new URL("../dist/src/cli/main.js", import.meta.url);

let useSource = existsSync(source);
if (useSource) {
  try {
    const { register } = await import("tsx/esm/api");
    register();
  } catch {
    useSource = false;
  }
}
await import((useSource ? source : built).href);
