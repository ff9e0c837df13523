// Sign-in: e-mail and password, and the city's single sign-on when the server offers it.
import { ApiError, call } from '../api.js';
import { field, formProblem, h } from '../dom.js';

/** Where single sign-on returns to `/`; the view asked for is picked up from here after. */
export const RETURN_KEY = 'tally.returnTo';

function passwordForm(onSignedIn) {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const problem = formProblem();
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const signIn = async (event) => {
    event.preventDefault();
    submit.disabled = true;
    problem.textContent = '';
    try {
      onSignedIn(await call('POST', '/api/v1/auth/login', { body: { email: email.value, password: password.value } }));
    } catch (error) {
      problem.textContent = error instanceof ApiError ? error.message : `Could not sign in: ${error.message}`;
      password.select();
      submit.disabled = false;
    }
  };
  return h('form', { class: 'login-form', onsubmit: signIn, 'aria-label': 'Sign in with e-mail and password' },
    field('E-mail', email), field('Password', password), problem, h('p', { class: 'actions' }, submit));
}

function ssoButton(sso) {
  const start = () => {
    window.sessionStorage.setItem(RETURN_KEY, window.location.search);
    window.location.assign(sso.login_url);
  };
  return h('p', { class: 'sso' }, h('button', { type: 'button', onclick: start }, sso.label));
}

/**
 * The sign-in panel for the server's `config` (GET /auth/config); `problem` is a message to
 * show first (a failed single sign-on, an ended session); `catalog` links the open data.
 */
export function loginView({ config, problem, catalog, onSignedIn }) {
  return h('section', { class: 'panel login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Sign in to Tally'),
    problem ? h('p', { class: 'form-problem', role: 'alert' }, problem) : null,
    config.password_login ? passwordForm(onSignedIn) : null,
    config.sso ? ssoButton(config.sso) : null,
    h('p', {}, h('a', { href: catalog }, 'Open data catalogue (no account needed)')));
}
