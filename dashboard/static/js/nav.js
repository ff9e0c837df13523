// In-app navigation: push the new URL, then let the app render it.
let renderPage = () => {};

export function onNavigate(render) {
  renderPage = render;
}

export function go(query) {
  window.history.pushState(null, '', query);
  renderPage();
}
