import { describe, expect, it } from 'vitest';
import { addNote, listNotes } from '../src/notes.ts';
import { firstNewId, seedNotes } from './seed.ts';

describe('adding notes', () => {
  it('lists the seed and the one note it adds', async () => {
    await addNote('ada', 'Notes on the engine');
    expect(await listNotes()).toEqual([...seedNotes, { id: firstNewId, title: 'Notes on the engine', author: 'ada', archived: false }]);
  });

  it('lists the seed and the two notes it adds, with the ids after the seed', async () => {
    await addNote('grace', 'Compilers');
    await addNote('grace', 'Nanoseconds');
    expect(await listNotes()).toEqual([
      ...seedNotes,
      { id: firstNewId, title: 'Compilers', author: 'grace', archived: false },
      { id: firstNewId + 1, title: 'Nanoseconds', author: 'grace', archived: false },
    ]);
  });

  it('creates a new author with its first note', async () => {
    await addNote('linus', 'A kernel');
    expect(await listNotes()).toEqual([...seedNotes, { id: firstNewId, title: 'A kernel', author: 'linus', archived: false }]);
  });

  it('adds ten notes and sees exactly those after the seed', async () => {
    for (let i = 0; i < 10; i++) await addNote('ada', `note ${i}`);
    const notes = await listNotes();
    expect(notes).toHaveLength(seedNotes.length + 10);
    expect(notes.slice(0, seedNotes.length)).toEqual(seedNotes);
    expect(notes.at(-1)).toEqual({ id: firstNewId + 9, title: 'note 9', author: 'ada', archived: false });
  });
});
