// @berth/labkit: the lab format (docs/lab-format.md) read, linted, rendered for the browser, handed
// to the server, and tested against a real sandbox.
export type { Lab, LabStep, LabCheck, LabScript, LabError, Difficulty } from "./lab.js";
export { LIMITS } from "./lab.js";
export { parseLab, slugify } from "./parse.js";
export { loadLabs } from "./load.js";
export { renderLab, summarizeLab, renderHint, renderMarkdown } from "./render.js";
export { getCheck, getSetup, solutionsFor, labContentHash, prepareScript } from "./scripts.js";
export type { CheckSpec, SolutionSpec } from "./scripts.js";
export { testLab, runCheck } from "./test-lab.js";
export type { LabRunner, LabTestReport, CheckReport, CheckRun, ScriptRun, SolutionReport } from "./test-lab.js";
// Sandboxes to run testLab in: import "@berth/labkit/runners".
