import type { PrismaClient } from '../db.ts';
import { Prisma } from '../generated/prisma/client.ts';
import { HttpError } from '../shared/http.ts';

export interface UserDto {
  id: number;
  email: string;
  name: string;
  createdAt: string;
}

export interface PostDto {
  id: number;
  title: string;
  body: string;
  published: boolean;
  authorId: number;
  authorEmail: string;
  authorName: string;
  commentCount: number;
  createdAt: string;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** A non-blank string of at most `max` characters, stored as given; otherwise 400. */
function text(input: Record<string, unknown>, field: string, max: number): string {
  const value = input[field];
  if (typeof value !== 'string' || value.trim() === '') throw new HttpError(400, `${field} is required (non-empty string)`);
  if (value.length > max) throw new HttpError(400, `${field} must be at most ${max} characters`);
  return value;
}

function email(input: Record<string, unknown>, field: string): string {
  const value = text(input, field, 254);
  if (!EMAIL.test(value)) throw new HttpError(400, `${field} must be an e-mail address`);
  return value;
}

const postInclude = { author: true, _count: { select: { comments: true } } } as const;
type PostRow = Prisma.PostGetPayload<{ include: typeof postInclude }>;

function toPostDto(post: PostRow): PostDto {
  return {
    id: post.id,
    title: post.title,
    body: post.body,
    published: post.published,
    authorId: post.authorId,
    authorEmail: post.author.email,
    authorName: post.author.name,
    commentCount: post._count.comments,
    createdAt: post.createdAt.toISOString(),
  };
}

function toUserDto(user: { id: number; email: string; name: string; createdAt: Date }): UserDto {
  return { id: user.id, email: user.email, name: user.name, createdAt: user.createdAt.toISOString() };
}

export async function listUsers(prisma: PrismaClient): Promise<UserDto[]> {
  return (await prisma.user.findMany({ orderBy: { id: 'asc' } })).map(toUserDto);
}

export async function createUser(prisma: PrismaClient, input: Record<string, unknown>): Promise<UserDto> {
  const data = { email: email(input, 'email'), name: text(input, 'name', 100) };
  try {
    return toUserDto(await prisma.user.create({ data }));
  } catch (error) {
    if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
      throw new HttpError(409, `a user with email ${data.email} already exists`);
    }
    throw error;
  }
}

export async function listPosts(prisma: PrismaClient): Promise<PostDto[]> {
  return (await prisma.post.findMany({ orderBy: { id: 'asc' }, include: postInclude })).map(toPostDto);
}

export async function createPost(prisma: PrismaClient, input: Record<string, unknown>): Promise<PostDto> {
  const title = text(input, 'title', 200);
  const body = text(input, 'body', 10_000);
  const authorEmail = email(input, 'authorEmail');
  const published = input['published'] ?? false;
  if (typeof published !== 'boolean') throw new HttpError(400, 'published must be a boolean');
  const author = await prisma.user.findUnique({ where: { email: authorEmail } });
  if (!author) throw new HttpError(400, `unknown author: ${authorEmail}`);
  const post = await prisma.post.create({
    data: { title, body, published, authorId: author.id },
    include: postInclude,
  });
  return toPostDto(post);
}
