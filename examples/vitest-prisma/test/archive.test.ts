import { describe, expect, it } from 'vitest';
import { addNote, archiveNote, listNotes } from '../src/notes.ts';
import { firstNewId, seedNotes } from './seed.ts';

describe('archiving notes', () => {
  it('hides the seed note it archives', async () => {
    expect(await archiveNote(1)).toBe(true);
    expect(await listNotes()).toEqual(seedNotes.slice(1));
  });

  it('shows archived notes when asked, the seed and its own', async () => {
    const added = await addNote('grace', 'Debugging');
    await archiveNote(added.id);
    expect(await listNotes()).toEqual(seedNotes);
    expect(await listNotes({ archived: true })).toEqual([...seedNotes, { ...added, id: firstNewId, archived: true }]);
  });

  it('archives every seed note and sees none', async () => {
    for (const note of seedNotes) await archiveNote(note.id);
    expect(await listNotes()).toEqual([]);
  });

  it('finds no note after the seed to archive', async () => {
    expect(await archiveNote(firstNewId)).toBe(false);
    expect(await listNotes({ archived: true })).toEqual(seedNotes);
  });
});
