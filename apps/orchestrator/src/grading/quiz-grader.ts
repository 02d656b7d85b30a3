// Quizzes are graded here, on the server: the browser gets questions and options (QuizView), never
// which option is right or which text is accepted. Every answer is an attempt, stored like a
// check's, with what was answered and what was right.
import { findQuiz, gradeQuiz, type LabContext, type LabQuiz } from "@berth/labkit";
import type { QuizAnswers, QuizResultView } from "@berth/protocol";
import type { Db } from "../db/index.js";
import type { CatalogEntry } from "../labs/catalog.js";
import { LabRefusal } from "../labs/refusal.js";
import type { CheckRunner } from "./check-runner.js";
import { quizResultView } from "./progress.js";

export class QuizGrader {
  constructor(
    private readonly db: Db,
    /** Marks a step complete when its last quiz passes (as it does for checks). */
    private readonly checks: CheckRunner,
  ) {}

  static find(entry: CatalogEntry, quizId: string): LabQuiz {
    const quiz = findQuiz(entry.lab, quizId);
    if (!quiz) throw new LabRefusal("missing", `lab "${entry.lab.id}" has no quiz "${quizId}"`);
    return quiz;
  }

  async answer(userId: string, entry: CatalogEntry, quizId: string, answers: QuizAnswers, ctx: LabContext): Promise<QuizResultView> {
    const quiz = QuizGrader.find(entry, quizId);
    checkShape(quiz, answers);
    const graded = gradeQuiz(entry.lab, quizId, answers, ctx);
    if (!graded) throw new LabRefusal("missing", `lab "${entry.lab.id}" has no quiz "${quizId}"`);
    const labId = entry.lab.id;
    const previous = await this.db.quizAttempt.count({ where: { userId, labId, quizId } });
    const row = await this.db.quizAttempt.create({
      data: {
        userId,
        labId,
        labVersionId: entry.versionId,
        stepId: quiz.stepId,
        quizId,
        passed: graded.passed,
        answers: JSON.stringify(answers),
        perQuestion: JSON.stringify(graded.perQuestion),
        message: graded.message,
        points: graded.points,
      },
    });
    if (graded.passed) await this.checks.markStepIfComplete(userId, entry, quiz.stepId);
    return quizResultView(row, previous + 1);
  }
}

/**
 * Answers must name this quiz's questions, each with the kind of answer it takes: an option id of
 * the question for single choice, a list of them for multiple, text for text. A question left out
 * is simply wrong.
 */
function checkShape(quiz: LabQuiz, answers: QuizAnswers): void {
  for (const [questionId, answer] of Object.entries(answers)) {
    const q = quiz.questions.find((q) => q.id === questionId);
    if (!q) throw new LabRefusal("invalid", `quiz "${quiz.id}" has no question "${questionId}"`);
    if (q.kind === "text") {
      if (typeof answer !== "string") throw new LabRefusal("invalid", `question ${questionId} takes text, not a list`);
      continue;
    }
    const picked = typeof answer === "string" ? [answer] : answer;
    if (q.kind === "single" && typeof answer !== "string") throw new LabRefusal("invalid", `question ${questionId} takes one option id, not a list`);
    for (const id of picked) {
      if (!q.options.some((o) => o.id === id)) throw new LabRefusal("invalid", `question ${questionId} has no option "${id}"`);
    }
  }
}
