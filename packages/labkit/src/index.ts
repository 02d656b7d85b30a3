// @berth/labkit: the lab format (docs/lab-format.md) read, linted, rendered for the browser, handed
// to the server, and tested against a real sandbox.
export type {
  Lab, LabStep, LabCheck, LabScript, LabError, Difficulty, LabHint, LabQuiz, LabQuizQuestion, LabQuizOption,
  LabQuizAnswer, LabVariable, LabAsset, LabContext, SandboxFacts, QuizKind, VariableKind,
} from "./lab.js";
export { LIMITS } from "./lab.js";
export { parseLab, slugify } from "./parse.js";
export type { ParseOptions, ParseResult } from "./parse.js";
export { loadLabs } from "./load.js";
export { renderLab, summarizeLab, renderHint, renderSolution, renderMarkdown, resolveConditions } from "./render.js";
export type { RenderOptions } from "./render.js";
export { getCheck, getSetup, getStepSetup, solutionsFor, labContentHash, prepareScript, checkScore, checkWaived, waivedCheckMessage } from "./scripts.js";
export type { CheckSpec, SolutionSpec } from "./scripts.js";
export { gradeQuiz, findQuiz } from "./quiz.js";
export type { QuizAnswers, QuizGrade } from "./quiz.js";
export {
  learnerContext, learnerVariables, previewContext, substitute, scriptEnv, parseFacts, FACTS_SCRIPT, DEFAULT_FACTS, TEST_LEARNER,
} from "./context.js";
export { assetsScript, assetFile } from "./assets.js";
export { testLab, runCheck } from "./test-lab.js";
export type { LabRunner, LabTestReport, TestLabEvent, TestLabOptions, CheckReport, CheckRun, ScriptRun, SolutionReport, QuizReport } from "./test-lab.js";
// Sandboxes to run testLab in: import "@berth/labkit/runners".
