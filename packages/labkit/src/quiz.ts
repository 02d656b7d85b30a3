// Quiz grading, on the server only: the right options and accepted answers never leave the Lab
// model. A quiz passes when every question is right; it then earns its points (all or nothing, like
// a check).
import { previewContext, substitute } from "./context.js";
import type { Lab, LabContext, LabQuiz, LabQuizQuestion } from "./lab.js";

/** Per question: an option id (single), option ids (multiple), or the typed text (text). */
export type QuizAnswers = Record<string, string | string[]>;

export interface QuizGrade {
  quizId: string;
  stepId: string;
  passed: boolean;
  perQuestion: Record<string, boolean>;
  /** The quiz's points when passed, else 0. */
  points: number;
  /** For the learner: how many were right, never which answer is. */
  message: string;
}

export function findQuiz(lab: Lab, quizId: string): LabQuiz | undefined {
  for (const s of lab.steps) {
    const q = s.quizzes.find((q) => q.id === quizId);
    if (q) return q;
  }
  return undefined;
}

/** Trimmed, inner whitespace collapsed, and case folded unless the quiz is case-sensitive. */
function normalizeText(text: string, caseSensitive: boolean): string {
  const t = text.trim().replace(/\s+/g, " ");
  return caseSensitive ? t : t.toLowerCase();
}

function questionRight(q: LabQuizQuestion, answer: unknown, caseSensitive: boolean, ctx: LabContext): boolean {
  // Whatever a client sent: only a string or a list of strings can be right.
  if (typeof answer !== "string" && !(Array.isArray(answer) && answer.length <= 100 && answer.every((a) => typeof a === "string"))) return false;
  if (q.kind === "single") {
    const right = q.options.find((o) => o.correct)!.id;
    return typeof answer === "string" ? answer === right : answer.length === 1 && answer[0] === right;
  }
  if (q.kind === "multiple") {
    const given = new Set(typeof answer === "string" ? [answer] : answer);
    const right = q.options.filter((o) => o.correct).map((o) => o.id);
    return given.size === right.length && right.every((id) => given.has(id));
  }
  if (typeof answer !== "string" || answer.length > 1000) return false;
  const text = normalizeText(answer, caseSensitive);
  if (text === "") return false;
  return q.accept.some((a) => {
    const expected = substitute(a.text, ctx);
    if (a.kind === "literal") return normalizeText(expected, caseSensitive) === text;
    try {
      return new RegExp(`^(?:${expected})$`, caseSensitive ? "u" : "iu").test(text);
    } catch {
      return false; // the linter rejects bad patterns; a substituted one cannot break grading
    }
  });
}

/**
 * Grades one attempt; undefined when the lab has no such quiz. Answers for unknown questions are
 * ignored, a missing answer is wrong. `ctx` supplies the learner's values for answers written with
 * {{var.x}}.
 */
export function gradeQuiz(lab: Lab, quizId: string, answers: QuizAnswers, ctx: LabContext = previewContext(lab)): QuizGrade | undefined {
  const quiz = findQuiz(lab, quizId);
  if (!quiz) return undefined;
  const perQuestion: Record<string, boolean> = {};
  for (const q of quiz.questions) {
    const a = Object.prototype.hasOwnProperty.call(answers, q.id) ? answers[q.id] : undefined;
    perQuestion[q.id] = questionRight(q, a, quiz.caseSensitive, ctx);
  }
  const right = Object.values(perQuestion).filter(Boolean).length;
  const total = quiz.questions.length;
  const passed = right === total;
  return {
    quizId,
    stepId: quiz.stepId,
    passed,
    perQuestion,
    points: passed ? quiz.points : 0,
    message: passed ? (total === 1 ? "Right." : `All ${total} answers are right.`) : `${right} of ${total} right. Look again at the ones marked wrong.`,
  };
}

/** Answers that must pass (the right options, the first written-out text answer): for labkit test. */
export function rightAnswers(quiz: LabQuiz, ctx: LabContext): QuizAnswers {
  const out: QuizAnswers = {};
  for (const q of quiz.questions) {
    if (q.kind === "single") out[q.id] = q.options.find((o) => o.correct)!.id;
    else if (q.kind === "multiple") out[q.id] = q.options.filter((o) => o.correct).map((o) => o.id);
    else out[q.id] = substitute(q.accept.find((a) => a.kind === "literal")!.text, ctx);
  }
  return out;
}

/**
 * For each question, answers that must fail: every wrong option (single), the right set with one
 * option added or removed (multiple), an unrelated text (text). For labkit test.
 */
export function wrongAnswers(quiz: LabQuiz): { questionId: string; answer: string | string[] }[] {
  const out: { questionId: string; answer: string | string[] }[] = [];
  for (const q of quiz.questions) {
    if (q.kind === "single") {
      for (const o of q.options) if (!o.correct) out.push({ questionId: q.id, answer: o.id });
    } else if (q.kind === "multiple") {
      const right = q.options.filter((o) => o.correct).map((o) => o.id);
      const wrong = q.options.filter((o) => !o.correct).map((o) => o.id);
      if (wrong.length > 0) out.push({ questionId: q.id, answer: [...right, wrong[0]!] });
      if (right.length > 1 || wrong.length > 0) out.push({ questionId: q.id, answer: right.slice(1).length ? right.slice(1) : [wrong[0]!] });
    } else {
      out.push({ questionId: q.id, answer: "labkit: certainly not the answer" });
      out.push({ questionId: q.id, answer: "" });
    }
  }
  return out;
}
