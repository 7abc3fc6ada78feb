// bayeux admin: keeps the overview's live figures and rate chart current
// without a page reload. Every 2 s (while the tab is visible) it fetches
// the server-rendered fragment named by data-live and swaps it in. When
// the login ended (redirect to /login) or the user lost admin rights
// (403), it reloads the page, which then shows why.
(function () {
  'use strict';
  var el = document.querySelector('[data-live]');
  if (!el || !window.fetch) {
    return;
  }
  var url = el.getAttribute('data-live');
  var busy = false;
  var stopped = false;

  function tick() {
    if (busy || stopped || document.hidden) {
      return;
    }
    busy = true;
    fetch(url, { credentials: 'same-origin', cache: 'no-store', redirect: 'follow' })
      .then(function (res) {
        if (res.redirected || res.status === 403) {
          stopped = true;
          window.location.reload();
          return null;
        }
        if (!res.ok) {
          throw new Error('HTTP ' + res.status);
        }
        return res.text();
      })
      .then(function (html) {
        if (html !== null) {
          el.innerHTML = html;
          el.removeAttribute('data-stale');
        }
      })
      .catch(function () {
        // The server is restarting or unreachable: keep the last figures,
        // marked stale, and try again on the next tick.
        el.setAttribute('data-stale', '');
      })
      .then(function () {
        busy = false;
      });
  }

  setInterval(tick, 2000);
  document.addEventListener('visibilitychange', tick);
})();
