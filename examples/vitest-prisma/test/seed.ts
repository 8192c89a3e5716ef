import { SEED_NOTES } from '../prisma/seed-data.ts';
import type { Note } from '../src/notes.ts';

/** The notes of the seed, as listNotes() returns them: ids 1 to 3. */
export const seedNotes: Note[] = SEED_NOTES.map((note, index) => ({ id: index + 1, title: note.title, author: note.author, archived: false }));

/** The id the first note a test adds gets: right after the seed's (sequences start over with every reset). */
export const firstNewId = seedNotes.length + 1;
