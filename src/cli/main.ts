#!/usr/bin/env node
// Entry point of `dv`: wiring only.
import { runCli } from "./run.js";

process.exitCode = await runCli(process.argv.slice(2));
