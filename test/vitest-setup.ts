// Runs before every test file of both vitest tiers (setupFiles in vitest.config.ts and
// vitest.unit.config.ts). Their files share processes, modules kept loaded from one file to the
// next (isolate: false; the system tier runs all of its files in one process), so nothing a file
// changes in the process may reach the next: its environment variables, working directory and
// umask are put back once its last test (and afterAll hook) is done.
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
