import { describe, expect } from 'vitest';
import { resetDatabase, test } from 'e2e-lanes/vitest';
import { addNote, countByAuthor, deleteAuthor, listNotes } from '../src/notes.ts';
import { seedNotes } from './seed.ts';

describe('authors', () => {
  test('counts the seed authors and the one it adds', async () => {
    await addNote('margaret', 'Apollo');
    expect(await countByAuthor()).toEqual({ ada: 2, grace: 1, margaret: 1 });
  });

  test('deletes a seed author with their notes', async () => {
    await deleteAuthor('ada');
    expect(await countByAuthor()).toEqual({ grace: 1 });
    expect(await listNotes()).toEqual(seedNotes.filter((note) => note.author !== 'ada'));
  });

  test('runs on the database of its own worker, named in DATABASE_URL', async ({ database }) => {
    expect(process.env['DATABASE_URL']).toBe(database.url);
    expect(new URL(database.url).pathname).toBe(`/${database.name}`);
    await addNote('edsger', 'Goto');
    expect(await countByAuthor()).toEqual({ ada: 2, edsger: 1, grace: 1 });
  });

  test('starts from the seed again in its middle with resetDatabase()', async () => {
    await deleteAuthor('grace');
    await resetDatabase();
    expect(await listNotes()).toEqual(seedNotes);
  });
});
