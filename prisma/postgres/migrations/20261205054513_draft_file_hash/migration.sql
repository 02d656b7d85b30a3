-- AlterTable
ALTER TABLE "LabDraftAsset" ADD COLUMN     "sha256" TEXT NOT NULL DEFAULT '';
