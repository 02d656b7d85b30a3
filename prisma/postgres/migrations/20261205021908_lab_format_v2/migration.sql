-- CreateTable
CREATE TABLE "HintReveal" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "labId" TEXT NOT NULL,
    "checkId" TEXT NOT NULL,
    "index" INTEGER NOT NULL,
    "cost" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "HintReveal_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SolutionReveal" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "labId" TEXT NOT NULL,
    "checkId" TEXT NOT NULL,
    "how" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "SolutionReveal_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "QuizAttempt" (
    "id" TEXT NOT NULL,
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
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "QuizAttempt_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LabProgress" (
    "userId" TEXT NOT NULL,
    "labId" TEXT NOT NULL,
    "currentStep" TEXT,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "LabProgress_pkey" PRIMARY KEY ("userId","labId")
);

-- CreateTable
CREATE TABLE "StepSetupRun" (
    "sandboxId" TEXT NOT NULL,
    "stepId" TEXT NOT NULL,
    "exitCode" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "StepSetupRun_pkey" PRIMARY KEY ("sandboxId","stepId")
);

-- CreateIndex
CREATE UNIQUE INDEX "HintReveal_userId_labId_checkId_index_key" ON "HintReveal"("userId", "labId", "checkId", "index");

-- CreateIndex
CREATE UNIQUE INDEX "SolutionReveal_userId_labId_checkId_key" ON "SolutionReveal"("userId", "labId", "checkId");

-- CreateIndex
CREATE INDEX "QuizAttempt_userId_labId_idx" ON "QuizAttempt"("userId", "labId");

-- CreateIndex
CREATE INDEX "QuizAttempt_labVersionId_idx" ON "QuizAttempt"("labVersionId");

-- AddForeignKey
ALTER TABLE "HintReveal" ADD CONSTRAINT "HintReveal_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SolutionReveal" ADD CONSTRAINT "SolutionReveal_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "QuizAttempt" ADD CONSTRAINT "QuizAttempt_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "QuizAttempt" ADD CONSTRAINT "QuizAttempt_labVersionId_fkey" FOREIGN KEY ("labVersionId") REFERENCES "LabVersion"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LabProgress" ADD CONSTRAINT "LabProgress_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "StepSetupRun" ADD CONSTRAINT "StepSetupRun_sandboxId_fkey" FOREIGN KEY ("sandboxId") REFERENCES "Sandbox"("id") ON DELETE CASCADE ON UPDATE CASCADE;
