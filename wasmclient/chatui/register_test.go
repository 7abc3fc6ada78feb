package chatui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// An app that embeds the chat at a path of its own gets the chat page
// there, prerendered with the room of the query.
func TestRegisterAt(t *testing.T) {
	RegisterAt("/support/chat")
	RegisterAt("/support/chat") // again: nothing happens
	h := &app.Handler{Name: "host app", Version: "test", Icon: app.Icon{Default: "/web/icon.png"}}
	page := func(target string) string {
		t.Helper()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		b, _ := io.ReadAll(w.Result().Body)
		return string(b)
	}
	body := page("/support/chat?room=lobby")
	if !strings.Contains(body, `data-testid="chat-status"`) || !strings.Contains(body, ">lobby<") {
		t.Errorf("GET /support/chat?room=lobby: no chat page for the room:\n%.2000s", body)
	}
	if body := page("/support/elsewhere"); strings.Contains(body, `data-testid="chat-status"`) {
		t.Errorf("the chat answered an unregistered path")
	}
}

// In a frame the chat is compact: no room list, no title, no logout
// link; it shows its own login form when it needs a login.
func TestCompactRender(t *testing.T) {
	e := app.NewTestEngine()
	c := &Chat{framed: true, loginForm: true, loginErr: "Login failed"}
	e.Load(c)
	e.ConsumeAll()
	if err := app.Match(app.Div().Class("chat-app", "compact"), c, 0); err != nil {
		t.Errorf("root: %v", err)
	}
	html := app.HTMLString(c)
	for _, want := range []string{`data-testid="login-user"`, `data-testid="login-password"`, `data-testid="login-submit"`, `data-testid="login-error"`} {
		if !strings.Contains(html, want) {
			t.Errorf("compact login: no %s", want)
		}
	}
	for _, unwanted := range []string{"chat-rooms", "chat-logout", "chat-title"} {
		if strings.Contains(html, unwanted) {
			t.Errorf("compact page has %s", unwanted)
		}
	}

	full := app.HTMLString(&Chat{})
	if !strings.Contains(full, "chat-rooms") || strings.Contains(full, "compact") || strings.Contains(full, `data-testid="login-user"`) {
		t.Errorf("the full page is not the full page")
	}
}
