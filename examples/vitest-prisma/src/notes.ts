import { pool } from './db.ts';

/** A note as the service returns it. */
export interface Note {
  id: number;
  title: string;
  author: string;
  archived: boolean;
}

const SELECT = 'SELECT n.id, n.title, a.name AS author, n.archived FROM "Note" n JOIN "Author" a ON a.id = n."authorId"';

/** Every note, oldest first; archived ones only when asked. */
export async function listNotes(options: { archived?: boolean } = {}): Promise<Note[]> {
  const where = options.archived ? '' : ' WHERE NOT n.archived';
  return (await pool.query<Note>(`${SELECT}${where} ORDER BY n.id`)).rows;
}

/** Adds a note by an author, creating the author on first use. */
export async function addNote(author: string, title: string): Promise<Note> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('INSERT INTO "Author" (name) VALUES ($1) ON CONFLICT (name) DO NOTHING', [author]);
    const { rows } = await client.query<{ id: number }>('INSERT INTO "Note" (title, "authorId") SELECT $1, id FROM "Author" WHERE name = $2 RETURNING id', [title, author]);
    await client.query('COMMIT');
    return { id: rows[0]!.id, title, author, archived: false };
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

/** Archives a note; resolves false when there is no such note. */
export async function archiveNote(id: number): Promise<boolean> {
  return ((await pool.query('UPDATE "Note" SET archived = true WHERE id = $1', [id])).rowCount ?? 0) > 0;
}

/** Deletes an author and their notes. */
export async function deleteAuthor(name: string): Promise<void> {
  await pool.query('DELETE FROM "Author" WHERE name = $1', [name]);
}

/** How many notes (not archived) each author has, by name. */
export async function countByAuthor(): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ name: string; count: string }>(
    'SELECT a.name, count(n.id) FILTER (WHERE NOT n.archived) AS count FROM "Author" a LEFT JOIN "Note" n ON n."authorId" = a.id GROUP BY a.name ORDER BY a.name',
  );
  return Object.fromEntries(rows.map((row) => [row.name, Number(row.count)]));
}
