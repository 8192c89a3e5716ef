import { prisma } from './db.ts';

/** A note as the service returns it. */
export interface Note {
  id: number;
  title: string;
  author: string;
  archived: boolean;
}

/** Every note, oldest first; archived ones only when asked. */
export async function listNotes(options: { archived?: boolean } = {}): Promise<Note[]> {
  const notes = await prisma.note.findMany({
    where: options.archived ? {} : { archived: false },
    include: { author: true },
    orderBy: { id: 'asc' },
  });
  return notes.map((note) => ({ id: note.id, title: note.title, author: note.author.name, archived: note.archived }));
}

/** Adds a note by an author, creating the author on first use. */
export async function addNote(author: string, title: string): Promise<Note> {
  const note = await prisma.note.create({
    data: { title, author: { connectOrCreate: { where: { name: author }, create: { name: author } } } },
  });
  return { id: note.id, title, author, archived: false };
}

/** Archives a note; resolves false when there is no such note. */
export async function archiveNote(id: number): Promise<boolean> {
  return (await prisma.note.updateMany({ where: { id }, data: { archived: true } })).count > 0;
}

/** Deletes an author and their notes. */
export async function deleteAuthor(name: string): Promise<void> {
  await prisma.author.deleteMany({ where: { name } });
}

/** How many notes (not archived) each author has, by name. */
export async function countByAuthor(): Promise<Record<string, number>> {
  const authors = await prisma.author.findMany({
    select: { name: true, _count: { select: { notes: { where: { archived: false } } } } },
    orderBy: { name: 'asc' },
  });
  return Object.fromEntries(authors.map((author) => [author.name, author._count.notes]));
}
