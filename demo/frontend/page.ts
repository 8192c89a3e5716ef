/** The single page of the demo: vanilla JS, no build step, talks to /api on its own origin. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>e2e-lanes demo</title>
  <style>
    body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; }
    form { display: grid; gap: .5rem; margin-top: 1.5rem; }
    [role=alert] { color: #b00020; }
    .author { color: #555; }
  </style>
</head>
<body>
  <main data-testid="app" data-state="loading">
    <h1>Posts</h1>
    <p>Lane database: <code data-testid="lane-database">…</code></p>
    <ul data-testid="post-list" aria-label="Posts"></ul>
    <form data-testid="new-post-form" aria-label="New post">
      <label>Title <input name="title" data-testid="new-post-title" required maxlength="200"></label>
      <label>Body <textarea name="body" data-testid="new-post-body" required maxlength="10000"></textarea></label>
      <label>Author <select name="authorEmail" data-testid="new-post-author" required></select></label>
      <button type="submit" data-testid="new-post-submit" disabled>Create post</button>
      <p role="alert" data-testid="new-post-error"></p>
    </form>
  </main>
  <script type="module">
    const $ = (id) => document.querySelector('[data-testid="' + id + '"]');
    const app = $('app'), list = $('post-list'), form = $('new-post-form');
    const author = $('new-post-author'), submit = $('new-post-submit'), errorBox = $('new-post-error');

    async function api(path, init) {
      const res = await fetch('/api' + path, init);
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(data.error || res.status + ' ' + res.statusText);
      return data;
    }

    function renderPosts(posts) {
      list.replaceChildren(...posts.map((post) => {
        const li = document.createElement('li');
        li.dataset.testid = 'post-item';
        li.dataset.postId = String(post.id);
        const title = document.createElement('strong');
        title.dataset.testid = 'post-title';
        title.textContent = post.title;
        const by = document.createElement('span');
        by.className = 'author';
        by.dataset.testid = 'post-author';
        by.textContent = post.authorEmail;
        li.append(title, ' by ', by);
        return li;
      }));
    }

    async function load() {
      const [info, users, posts] = await Promise.all([api('/info'), api('/users'), api('/posts')]);
      $('lane-database').textContent = info.database;
      author.replaceChildren(...users.map((user) => {
        const option = document.createElement('option');
        option.value = user.email;
        option.textContent = user.name + ' <' + user.email + '>';
        return option;
      }));
      renderPosts(posts);
      submit.disabled = false;
    }

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      errorBox.textContent = '';
      submit.disabled = true;
      app.dataset.state = 'saving';
      try {
        const fields = new FormData(form);
        await api('/posts', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ title: fields.get('title'), body: fields.get('body'), authorEmail: fields.get('authorEmail') }),
        });
        form.elements.title.value = '';
        form.elements.body.value = '';
        renderPosts(await api('/posts'));
      } catch (error) {
        errorBox.textContent = error.message;
      } finally {
        submit.disabled = false;
        app.dataset.state = 'ready';
      }
    });

    load().then(
      () => { app.dataset.state = 'ready'; },
      (error) => { app.dataset.state = 'error'; errorBox.textContent = 'Could not load: ' + error.message; },
    );
  </script>
</body>
</html>
`;
