// Runs before every test file of the system tier (vitest.config.ts: setupFiles). The tier runs all
// its files in one process, one after another, with modules kept loaded between them (isolate:
// false), so nothing a file changes in the process may reach the next: its environment variables,
// working directory and umask are put back once its last test (and afterAll hook) is done.
import { afterAll } from "vitest";

const env = { ...process.env };
const cwd = process.cwd();
const umask = process.umask();

afterAll(() => {
  for (const name of Object.keys(process.env)) if (!(name in env)) delete process.env[name];
  for (const [name, value] of Object.entries(env)) if (process.env[name] !== value) process.env[name] = value;
  if (process.cwd() !== cwd) process.chdir(cwd);
  process.umask(umask);
});
