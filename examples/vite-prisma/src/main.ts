/// <reference types="vite/client" />
// The page: reads the tasks from the API (same origin: the Vite server proxies /api to the backend).

interface Task {
  id: number;
  title: string;
  list: string;
  done: boolean;
}

async function getJson<T>(path: string, init?: RequestInit): Promise<T> {
  const response = await fetch(path, init);
  if (!response.ok) throw new Error(`${path} answered ${response.status}`);
  return (await response.json()) as T;
}

function taskItem(task: Task): HTMLLIElement {
  const item = document.createElement('li');
  item.dataset['testid'] = 'task';
  const title = document.createElement('span');
  title.dataset['testid'] = 'task-title';
  title.textContent = task.title;
  item.append(title, ` (${task.list}) `);
  if (task.done) {
    item.append('✓ done');
  } else {
    const button = document.createElement('button');
    button.textContent = 'Done';
    button.setAttribute('aria-label', `Done: ${task.title}`);
    button.addEventListener('click', () => void getJson(`/api/tasks/${task.id}/done`, { method: 'POST' }).then(render));
    item.append(button);
  }
  return item;
}

async function render(): Promise<void> {
  const [info, tasks] = await Promise.all([getJson<{ database: string }>('/api/info'), getJson<Task[]>('/api/tasks')]);
  document.querySelector('[data-testid="database"]')!.textContent = info.database;
  document.querySelector('[data-testid="tasks"]')!.replaceChildren(...tasks.map(taskItem));
}

// VITE_* variables come from .env (or the environment), inlined by Vite.
document.querySelector('[data-testid="title"]')!.textContent = import.meta.env.VITE_APP_TITLE ?? 'Tasks';
void render();
