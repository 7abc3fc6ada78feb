/* frame-token.js: a framed chat's login token from the page that frames it.

   The host site's backend mints a short-lived token for its logged-in
   user; the host page hands it to the chat's frame by postMessage, never
   in the URL:

     frame -> parent:  {bayeux: "token-request", id: N}
     parent -> frame:  {bayeux: "token", id: N, token: "<JWT>"}   (id optional)

   A token is taken only from the window that frames the chat and only
   from an origin of BAYEUX_EMBED_ORIGINS (the page lists them in
   <meta name="bayeux-embed-origins">); anything else is ignored. Requests
   are posted to those origins only. A token that comes before it is asked
   for is kept for the next request.

   window.__bayeuxFrameToken() -> Promise<string>: asks the parent for a
   token and resolves with it, or with "" when none came in time: 3 s
   until the parent gave a first token (a page that gives none leaves the
   chat to its own login form soon), 15 s after. The chat (Go,
   wasmclient/chatui) calls it before it logs in and again before each
   token expires.
*/
(function () {
  "use strict";
  if (window.self === window.top) {
    return;
  }
  // The allowed origins, read when first needed: go-app puts the meta
  // tag after this script in the page's head.
  var allowed = null;
  var ok = [];
  var any = false;
  function origins() {
    if (allowed === null) {
      var meta = document.querySelector('meta[name="bayeux-embed-origins"]');
      if (!meta) {
        return [];
      }
      allowed = (meta.getAttribute("content") || "").split(/\s+/).filter(Boolean);
      ok = allowed.map(norm);
      any = allowed.indexOf("*") >= 0;
    }
    return allowed;
  }
  // Browsers serialise an event's origin in lower case without a default
  // port; the configured ones are brought to that form.
  function norm(o) {
    o = String(o).toLowerCase().replace(/\/+$/, "");
    if (/^https:\/\/.*:443$/.test(o)) {
      o = o.slice(0, -4);
    } else if (/^http:\/\/.*:80$/.test(o)) {
      o = o.slice(0, -3);
    }
    return o;
  }
  var next = 0;
  var waiting = {};
  var early = "";
  var gave = false; // the parent gave a token

  window.addEventListener("message", function (e) {
    if (e.source !== window.parent || e.origin === "null" || origins().length === 0 || !(any || ok.indexOf(norm(e.origin)) >= 0)) {
      return; // not the page framing the chat, or not an allowed site
    }
    var d = e.data;
    if (!d || typeof d !== "object" || d.bayeux !== "token" || typeof d.token !== "string" || d.token === "") {
      return;
    }
    var ids = typeof d.id === "number" && waiting[d.id] ? [d.id] : Object.keys(waiting);
    if (ids.length === 0) {
      early = d.token;
      gave = true;
      return;
    }
    gave = true;
    ids.forEach(function (id) {
      var done = waiting[id];
      delete waiting[id];
      done(d.token);
    });
  });

  window.__bayeuxFrameToken = function () {
    var ms = gave ? 15000 : 3000;
    return new Promise(function (resolve) {
      if (origins().length === 0) {
        resolve(""); // nobody may frame the chat: no token
        return;
      }
      if (early !== "") {
        var t = early;
        early = "";
        resolve(t);
        return;
      }
      var id = ++next;
      var timer = setTimeout(function () {
        delete waiting[id];
        resolve("");
      }, ms);
      waiting[id] = function (token) {
        clearTimeout(timer);
        resolve(token);
      };
      (any ? ["*"] : allowed).forEach(function (o) {
        try {
          window.parent.postMessage({bayeux: "token-request", id: id}, o);
        } catch (err) {
          // an origin the browser cannot parse: skipped
        }
      });
    });
  };
})();
