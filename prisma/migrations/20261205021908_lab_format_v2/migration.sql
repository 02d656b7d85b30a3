-- CreateTable
CREATE TABLE "HintReveal" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "userId" TEXT NOT NULL,
    "labId" TEXT NOT NULL,
    "checkId" TEXT NOT NULL,
    "index" INTEGER NOT NULL,
    "cost" INTEGER NOT NULL DEFAULT 0,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "HintReveal_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "SolutionReveal" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "userId" TEXT NOT NULL,
    "labId" TEXT NOT NULL,
    "checkId" TEXT NOT NULL,
    "how" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "SolutionReveal_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "QuizAttempt" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "userId" TEXT NOT NULL,
    "labId" TEXT NOT NULL,
    "labVersionId" TEXT,
    "stepId" TEXT NOT NULL,
    "quizId" TEXT NOT NULL,
    "passed" BOOLEAN NOT NULL,
    "answers" TEXT NOT NULL,
    "perQuestion" TEXT NOT NULL,
    "message" TEXT NOT NULL,
    "points" INTEGER NOT NULL DEFAULT 0,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "QuizAttempt_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "QuizAttempt_labVersionId_fkey" FOREIGN KEY ("labVersionId") REFERENCES "LabVersion" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "LabProgress" (
    "userId" TEXT NOT NULL,
    "labId" TEXT NOT NULL,
    "currentStep" TEXT,
    "startedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,

    PRIMARY KEY ("userId", "labId"),
    CONSTRAINT "LabProgress_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "StepSetupRun" (
    "sandboxId" TEXT NOT NULL,
    "stepId" TEXT NOT NULL,
    "exitCode" INTEGER,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,

    PRIMARY KEY ("sandboxId", "stepId"),
    CONSTRAINT "StepSetupRun_sandboxId_fkey" FOREIGN KEY ("sandboxId") REFERENCES "Sandbox" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "HintReveal_userId_labId_checkId_index_key" ON "HintReveal"("userId", "labId", "checkId", "index");

-- CreateIndex
CREATE UNIQUE INDEX "SolutionReveal_userId_labId_checkId_key" ON "SolutionReveal"("userId", "labId", "checkId");

-- CreateIndex
CREATE INDEX "QuizAttempt_userId_labId_idx" ON "QuizAttempt"("userId", "labId");

-- CreateIndex
CREATE INDEX "QuizAttempt_labVersionId_idx" ON "QuizAttempt"("labVersionId");
