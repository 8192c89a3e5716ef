-- AlterTable
ALTER TABLE "Task" ADD COLUMN     "doneAt" TIMESTAMP(3);
