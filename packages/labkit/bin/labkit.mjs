#!/usr/bin/env node
// The labkit command: runs src/cli.ts through tsx (Berth has no build step for Node packages).
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");
