package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestLoginWrongPasswordShowsError: a wrong password keeps the browser on
// /login with login-error shown, and the right one leads on to the chat.
func TestLoginWrongPasswordShowsError(t *testing.T) {
	b := startBayeux(t, map[string]string{"alice": "alice-secret"})
	ctx := newBrowser(t)()
	do(t, ctx, 20*time.Second,
		chromedp.Navigate(b.URL+"/chat/"),
		chromedp.WaitVisible(sel("login-user")),
		chromedp.SendKeys(sel("login-user"), "alice"),
		chromedp.SendKeys(sel("login-password"), "wrong"),
		chromedp.Click(sel("login-submit")),
		chromedp.WaitVisible(sel("login-error")),
	)
	msg := get(t, ctx, 5*time.Second, chromedp.Text(sel("login-error")))
	if !strings.Contains(strings.ToLower(msg), "wrong") {
		t.Errorf("login-error = %q", msg)
	}
	loc := get(t, ctx, 5*time.Second, chromedp.Location())
	if !strings.Contains(loc, "/login") {
		t.Errorf("after a wrong password the browser is at %s", loc)
	}
	do(t, ctx, 20*time.Second,
		chromedp.SendKeys(sel("login-password"), "alice-secret"),
		chromedp.Click(sel("login-submit")),
		chromedp.WaitVisible(sel("chat-status")),
	)
	if loc := get(t, ctx, 5*time.Second, chromedp.Location()); !strings.Contains(loc, "/chat/") {
		t.Errorf("after login the browser is at %s, want the chat", loc)
	}
}

// colorScheme emulates the user's prefers-color-scheme ("dark", "light").
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	})
}

// pageLayout is what a test needs to know of a page's layout: whether it
// scrolls sideways, where the given elements are, and its colours.
type pageLayout struct {
	ScrollWidth, Width, Height float64
	Boxes                      map[string]box // by data-testid
	Main                       box            // the first <main>
	Background, Color          string         // of the body, as computed
}

type box struct{ Left, Right, Top, Bottom float64 }

func layoutOf(t *testing.T, ctx context.Context, testids ...string) pageLayout {
	t.Helper()
	ids, _ := json.Marshal(append([]string{}, testids...))
	return get(t, ctx, 5*time.Second, chromedp.Evaluate[pageLayout](`(() => {
  const box = (el) => { if (!el) return null; const b = el.getBoundingClientRect(); return {left: b.left, right: b.right, top: b.top, bottom: b.bottom}; };
  const boxes = {};
  for (const id of `+string(ids)+`) boxes[id] = box(document.querySelector('[data-testid="' + id + '"]'));
  const body = getComputedStyle(document.body);
  return {scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth, height: window.innerHeight,
    boxes: boxes, main: box(document.querySelector("main")), background: body.backgroundColor, color: body.color};
})()`))
}

// luminance of a CSS rgb()/rgba() colour, 0 (black) to 1 (white).
func luminance(t *testing.T, css string) float64 {
	t.Helper()
	var r, g, b float64
	if _, err := fmt.Sscanf(strings.NewReplacer("rgba(", "rgb(", ",", " ").Replace(css), "rgb(%f %f %f", &r, &g, &b); err != nil {
		t.Fatalf("colour %q: %v", css, err)
	}
	return (0.2126*r + 0.7152*g + 0.0722*b) / 255
}

// checkFits fails when the page scrolls sideways or an element is outside
// the viewport.
func checkFits(t *testing.T, what string, l pageLayout) {
	t.Helper()
	if l.ScrollWidth > l.Width {
		t.Errorf("%s scrolls sideways: %v px wide in a %v px window", what, l.ScrollWidth, l.Width)
	}
	for id, b := range l.Boxes {
		if b.Right <= b.Left || b.Left < 0 || b.Right > l.Width || b.Top < 0 || b.Bottom > l.Height {
			t.Errorf("%s: %s at %+v is not inside the %vx%v viewport", what, id, b, l.Width, l.Height)
		}
	}
}

// TestLoginNarrowDark: on a 360 px wide phone in dark mode the login page
// fits without sideways scrolling, its form is centred and usable, a
// wrong password shows a visible error, and the page has the chat's
// colours, dark and light.
func TestLoginNarrowDark(t *testing.T) {
	b := startBayeux(t, users)
	ctx := newBrowser(t)()
	form := []string{"login-user", "login-password", "login-submit"}
	do(t, ctx, 20*time.Second,
		chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile),
		colorScheme("dark"),
		chromedp.Navigate(b.URL+"/chat/?room=phone"),
		chromedp.WaitVisible(sel("login-user")),
	)
	login := layoutOf(t, ctx, form...)
	checkFits(t, "/login at 360 px", login)
	if m := login.Main; m.Left < 4 || m.Right > login.Width-4 || math.Abs(m.Left-(login.Width-m.Right)) > 1 {
		t.Errorf("the form is not centred with a margin: %+v in %v px", m, login.Width)
	}
	if w := login.Boxes["login-user"].Right - login.Boxes["login-user"].Left; w < 240 {
		t.Errorf("the user field is %v px wide, too narrow to use", w)
	}
	if bg, fg := luminance(t, login.Background), luminance(t, login.Color); bg > 0.2 || fg < 0.6 {
		t.Errorf("dark mode: background %s, text %s", login.Background, login.Color)
	}

	do(t, ctx, 20*time.Second,
		chromedp.SendKeys(sel("login-user"), "alice"),
		chromedp.SendKeys(sel("login-password"), "not her password"),
		chromedp.Click(sel("login-submit")),
		chromedp.WaitVisible(sel("login-error")),
	)
	failed := layoutOf(t, ctx, append(form, "login-error")...)
	checkFits(t, "/login with an error", failed)
	errColor := get(t, ctx, 5*time.Second, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('[data-testid="login-error"]')).color`))
	var r, g, bl float64
	fmt.Sscanf(strings.NewReplacer(",", " ").Replace(errColor), "rgb(%f %f %f", &r, &g, &bl)
	if r < g+60 || r < bl+60 {
		t.Errorf("login-error is %s, not an error red", errColor)
	}
	if msg := text(t, ctx, "login-error"); !strings.Contains(strings.ToLower(msg), "wrong") {
		t.Errorf("login-error = %q", msg)
	}

	do(t, ctx, 20*time.Second,
		chromedp.SendKeys(sel("login-password"), users["alice"]),
		chromedp.Click(sel("login-submit")),
	)
	waitConnected(t, ctx, 20*time.Second)
	waitText(t, ctx, "chat-room", "phone", 5*time.Second)
	chat := layoutOf(t, ctx, "chat-input", "chat-send")
	checkFits(t, "the chat at 360 px", chat)
	if chat.Background != login.Background || chat.Color != login.Color {
		t.Errorf("dark chat %s on %s, dark login %s on %s: not the same product", chat.Color, chat.Background, login.Color, login.Background)
	}

	do(t, ctx, 20*time.Second, colorScheme("light"))
	light := layoutOf(t, ctx)
	do(t, ctx, 20*time.Second,
		chromedp.Navigate(b.URL+"/logout"),
		chromedp.WaitVisible(sel("login-user")),
	)
	lightLogin := layoutOf(t, ctx)
	if luminance(t, light.Background) < 0.8 || lightLogin.Background != light.Background || lightLogin.Color != light.Color {
		t.Errorf("light chat %s on %s, light login %s on %s", light.Color, light.Background, lightLogin.Color, lightLogin.Background)
	}
}
