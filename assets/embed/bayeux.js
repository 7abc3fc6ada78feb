/* bayeux.js: the Go Bayeux client (wasmclient) for any web page.

   <script src="https://chat.example/embed/bayeux.js"></script>
   <script>
     Bayeux.connect({user: "alice", password: "secret"})   // url defaults to this script's server + /cometd
       .then(() => Bayeux.subscribe("/chat/demo", (data) => console.log(data.user, data.chat)))
       .then(() => Bayeux.publish("/chat/demo", {chat: "hello"}));
   </script>

   It loads Go's wasm_exec.js (from the server's /chat/wasm_exec.js) and
   /embed/bayeux.wasm, then resolves Bayeux.ready. Every method waits for
   that itself. The page's origin must be listed in the server's
   BAYEUX_ALLOWED_ORIGINS. The client talks WebSocket (the only transport
   that keeps a session across sites without cookies), falling back to
   long-polling.

   Bayeux.connect({url, user, password, token, getToken, ext, webSocket}) -> Promise
   Bayeux.subscribe(channel, (data, message) => ...)    -> Promise<id>
   Bayeux.unsubscribe(id)                               -> Promise
   Bayeux.publish(channel, data)                        -> Promise
   Bayeux.call(service, data)                           -> Promise<reply data>
   Bayeux.disconnect()                                  -> Promise
   Bayeux.onState(({state, error}) => ...)              -> Promise<remove function>
   Bayeux.clientId()                                    -> Promise<string>

   With a token (a JWT your backend minted for your user) instead of a
   user and password, give getToken too: a function that fetches a fresh
   one from your backend and returns it (or a Promise of it). The client
   calls it before the token expires, to keep the session, and when the
   server refuses a handshake:

     Bayeux.connect({token: first, getToken: () => fetch("/chat-token").then((r) => r.text())})

   Wrong arguments reject with an Error that says what was expected. The
   methods are implemented in Go: internal/jsapi (cmd/embedwasm).
*/
(function () {
  "use strict";
  if (window.Bayeux) {
    return;
  }
  var script = document.currentScript;
  var base = new URL(".", script ? script.src : location.href); // .../embed/
  var origin = base.origin;

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = function () { reject(new Error("bayeux.js: cannot load " + src)); };
      document.head.appendChild(s);
    });
  }

  var ready = (typeof Go === "function" ? Promise.resolve() : loadScript(origin + "/chat/wasm_exec.js"))
    .then(function () {
      var go = new Go();
      var started = new Promise(function (resolve) { window.__bayeuxGoReady = resolve; });
      var url = new URL("bayeux.wasm", base).href;
      var fetched = fetch(url, {mode: "cors", credentials: "omit"}).then(function (res) {
        if (!res.ok) {
          throw new Error("bayeux.js: " + url + ": " + res.status);
        }
        return res;
      });
      var inst = WebAssembly.instantiateStreaming
        ? WebAssembly.instantiateStreaming(fetched, go.importObject).catch(function () {
            return fetch(url, {mode: "cors", credentials: "omit"})
              .then(function (res) { return res.arrayBuffer(); })
              .then(function (buf) { return WebAssembly.instantiate(buf, go.importObject); });
          })
        : fetched.then(function (res) { return res.arrayBuffer(); })
            .then(function (buf) { return WebAssembly.instantiate(buf, go.importObject); });
      return inst.then(function (result) {
        go.run(result.instance);
        return started;
      });
    });

  function method(name, fix) {
    return function () {
      var args = Array.prototype.slice.call(arguments);
      return ready.then(function (api) { return api[name].apply(null, fix ? fix(args, api) : args); });
    };
  }

  // askToken is connect's bridge to the page's getToken: the Go side calls
  // it with a number and gets the answer through api.token(n, token, error).
  function askToken(getToken, api) {
    return function (n) {
      Promise.resolve()
        .then(function () { return getToken(); })
        .then(function (t) {
          if (typeof t === "string" && t !== "") {
            api.token(n, t, null);
          } else {
            api.token(n, null, "getToken must return a string (or a Promise of one)");
          }
        }, function (e) {
          api.token(n, null, String((e && e.message) || e || "rejected"));
        });
    };
  }

  window.Bayeux = {
    ready: ready.then(function () { return window.Bayeux; }),
    connect: method("connect", function (args, api) {
      var o = Object.assign({}, args[0] || {});
      var getToken = o.getToken;
      delete o.getToken; // functions do not survive JSON: passed apart
      if (!o.url) {
        o.url = origin + "/cometd";
      } else if (typeof o.url === "string") {
        try {
          o.url = new URL(o.url, location.href).href; // relative to the page
        } catch (e) {
          // left as is: connect rejects it with the reason
        }
      }
      if (getToken === undefined || getToken === null) {
        return [o];
      }
      return [o, typeof getToken === "function" ? askToken(getToken, api) : getToken];
    }),
    subscribe: method("subscribe"),
    unsubscribe: method("unsubscribe"),
    publish: method("publish"),
    call: method("call"),
    disconnect: method("disconnect"),
    onState: method("onState"),
    clientId: method("clientId")
  };
})();
