package chatui

import (
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// iconSVG is the page's favicon, inline so that go-app does not point at
// its own icon on GitHub.
const iconSVG = `data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E%3Ccircle cx='16' cy='16' r='14' fill='%232563eb'/%3E%3Cpath d='M9 16h14M16 9v14' stroke='%23fff' stroke-width='3' stroke-linecap='round'/%3E%3C/svg%3E`

// ServiceWorkerJS is the chat's service worker. It has no fetch handler:
// go-app's default worker answers every request from its cache or
// itself, so a long-poll the client aborts never reaches the server, and
// the chat is useless offline anyway. Every load therefore gets the
// current app.js and app.wasm from the server (revalidated by ETag).
//
// The script does not change between builds (no {{.Version}}), so
// browsers never install an "update" and go-app never tells an open page
// that one is ready: a page runs the build it loaded until it is
// reloaded. It replaces an older worker at once (go-app's default one,
// say) and deletes the caches such workers left.
const ServiceWorkerJS = `// bayeux chat service worker: no fetch handler, every request goes to the network.
self.addEventListener("install", (event) => {
  event.waitUntil(self.skipWaiting());
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys().then((keys) => Promise.all(keys.map((key) => caches.delete(key)))));
});
`

// NewHandler returns the go-app handler of the chat, for a server that
// mounts it under a prefix with http.StripPrefix. resources resolves
// "/web/..." (and the page "/") to the prefixed URLs; version identifies
// the build of app.wasm (go-app reloads the app when it changes). It
// calls Register.
func NewHandler(version string, resources app.ResourceResolver) *app.Handler {
	Register()
	return &app.Handler{
		Name:        "bayeux chat",
		ShortName:   "bayeux chat",
		Title:       "bayeux chat",
		Description: "Chat rooms on a Bayeux (CometD) server.",
		Lang:        "en",
		Icon: app.Icon{
			Default:  "/web/icon-192.png",
			Large:    "/web/icon-512.png",
			Maskable: "/web/icon-512.png",
			SVG:      iconSVG,
		},
		BackgroundColor:       "#f8fafc",
		ThemeColor:            "#2563eb",
		LoadingLabel:          "Loading the chat… {progress}%",
		Styles:                []string{"/web/chat.css"},
		Scripts:               []string{FrameTokenScript},
		Version:               version,
		Resources:             resources,
		ServiceWorkerTemplate: ServiceWorkerJS,
	}
}
