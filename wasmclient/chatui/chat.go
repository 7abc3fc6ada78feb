package chatui

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/bayeux-go/bayeux/wasmclient"
)

// Element ids the component looks up in the DOM.
const (
	messagesID  = "chat-messages"
	inputID     = "chat-input"
	joinInputID = "chat-join-input"
)

// maxText is the longest message in characters (the server's default
// limit, internal/chat.Chat.MaxText).
const maxText = 2000

// Chat is the chat page: the current room's messages and input, the rooms
// joined in this page, the members online in the current room and the
// connection status. The room comes from the URL (?room=NAME, default
// DefaultRoom).
//
// It talks to the Bayeux endpoint /cometd of the page's origin, logged in
// by the browser's login cookie. Network work starts in OnMount, which
// only runs in the browser: during server-side prerendering the page shows
// the room and the status "connecting…".
//
// In a frame (window.self !== window.top, as in <iframe
// src="https://host/chat/?room=NAME">) the page is compact (class
// "compact": no room list, no title, no logout link) and uses the
// WebSocket transport, which keeps a session without cookies. A
// cross-site frame usually has no login cookie (third-party cookies are
// blocked): when the handshake is anonymous the chat shows its own login
// form and handshakes again with ext.auth {user, password}. The
// credentials stay in memory, for re-handshakes, until the frame is
// reloaded. A frame whose host page hands it a login token by postMessage
// logs in with that instead, and asks the page again before the token
// expires (embedtoken.go).
//
// When the server ends the session (reconnect "none") the page asks
// /login whether the login cookie still stands; when the login was ended
// (logout in another tab, an admin, a password change) it says "logged
// out" with a link to the login page (data-testid chat-logged-out and
// chat-login-link) instead of offering to reconnect.
type Chat struct {
	app.Compo

	room    string                // current room
	order   []string              // rooms joined in this page, in order
	rooms   map[string]*roomState // by name
	user    string                // who we are, from chat/whoami
	status  wasmclient.StateInfo
	now     time.Time // for the retry countdown
	started bool      // OnMount ran: status is the client's
	notice  string    // a problem to show above the input
	joinErr string    // why the room form refused a name

	sess        *session
	gen         int // counts sessions; events of older ones are ignored
	stopTicker  context.CancelFunc
	onHide      app.Func // pagehide listener (sends the disconnect beacon)
	redirecting bool
	// loggedOut: the login this page ran on has ended (logout elsewhere,
	// an admin, a password change); the page says so and links to the
	// login page instead of offering to reconnect.
	loggedOut bool

	// In a frame (window.self !== window.top) the chat is compact and
	// logs in by itself: a cross-site frame has no login cookie.
	framed    bool
	loginForm bool   // show the frame's login form
	loginErr  string // why the last login failed
	loggingIn bool   // a login with creds is under way
	creds     *credentials
	// noFrameToken: the page framing the chat gave no login token (see
	// embedtoken.go); sessions log in as without one.
	noFrameToken bool
}

// credentials are what the frame's login form was given. They stay in
// memory only, for the client's re-handshakes.
type credentials struct {
	user, password string
}

// Element ids of the frame's login form.
const (
	loginUserID     = "chat-login-user"
	loginPasswordID = "chat-login-password"
)

func (c *Chat) init() {
	if c.rooms == nil {
		c.rooms = map[string]*roomState{}
	}
}

// OnNav opens the room named in the URL. It also runs on the server
// while prerendering, so it must not start network work itself.
func (c *Chat) OnNav(ctx app.Context) {
	c.init()
	room, ok := roomFromURL(ctx.Page().URL())
	c.notice = ""
	if !ok {
		c.notice = "That room name is not valid; showing " + DefaultRoom + " instead."
	}
	c.open(ctx, room)
}

// OnMount starts the Bayeux client (browser only).
func (c *Chat) OnMount(ctx app.Context) {
	c.init()
	c.started = true
	c.status = wasmclient.StateInfo{State: wasmclient.Connecting}
	c.now = time.Now()

	w := app.Window()
	c.framed = !w.Get("self").Equal(w.Get("top"))
	c.connect(ctx)

	// A closing tab cannot finish a request through the client, so the
	// browser's beacon sends /meta/disconnect: the others see the user
	// leave at once instead of after the session timeout.
	c.onHide = app.FuncOf(func(app.Value, []app.Value) any {
		if s := c.sess; s != nil {
			if id := s.c.ClientID(); id != "" {
				b, _ := json.Marshal([]map[string]string{{"channel": "/meta/disconnect", "clientId": id}})
				app.Window().Get("navigator").Call("sendBeacon", s.c.URL(), string(b))
			}
		}
		return nil
	})
	w.Call("addEventListener", "pagehide", c.onHide)

	tickCtx, stop := context.WithCancel(context.Background())
	c.stopTicker = stop
	ctx.Async(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-tickCtx.Done():
				return
			case now := <-t.C:
				ctx.Dispatch(func(ctx app.Context) {
					if c.status.State != wasmclient.Reconnecting {
						ctx.PreventUpdate()
						return
					}
					c.now = now
				})
			}
		}
	})
}

// connect starts a new session (stopping the current one): in a frame
// over WebSocket, the only transport that keeps a session without
// cookies, with the frame's credentials if it has some.
func (c *Chat) connect(ctx app.Context) {
	if old := c.sess; old != nil {
		c.sess = nil
		go old.stop()
	}
	c.gen++
	c.status = wasmclient.StateInfo{State: wasmclient.Connecting}
	u := app.Window().URL()
	endpoint := u.Scheme + "://" + u.Host + "/cometd"
	var opts wasmclient.Options
	if c.framed {
		opts.WebSocket = true
		if c.creds != nil {
			opts.Ext = map[string]any{"auth": map[string]string{"user": c.creds.user, "password": c.creds.password}}
		} else if !c.noFrameToken && hasFrameToken() {
			opts.Token = askParent
		}
	}
	s := newSession(endpoint, opts, c.events(ctx, c.gen))
	c.sess = s
	ctx.Async(func() { s.start() })
	for _, r := range c.order {
		if st := c.rooms[r]; st != nil {
			st.joining = false
		}
		c.join(ctx, r)
	}
}

// onLogin logs the frame in with the form's credentials.
func (c *Chat) onLogin(ctx app.Context, e app.Event) {
	e.PreventDefault()
	user := app.Window().GetElementByID(loginUserID)
	pw := app.Window().GetElementByID(loginPasswordID)
	if !user.Truthy() || !pw.Truthy() {
		return
	}
	name := strings.TrimSpace(user.Get("value").String())
	if name == "" {
		c.loginErr = "Enter your user name and password."
		return
	}
	c.creds = &credentials{user: name, password: pw.Get("value").String()}
	pw.Set("value", "")
	c.loginErr = ""
	c.loggingIn = true
	c.connect(ctx)
}

// needLogin shows the frame's login form, with an error when the
// credentials it was given did not work.
func (c *Chat) needLogin() {
	c.loginForm = true
	if c.creds != nil {
		c.loginErr = "Login failed: wrong user name or password."
		c.creds = nil
	}
	c.loggingIn = false
	// The session is of no use without a login (and would retry bad
	// credentials): stop it until the form is sent.
	if s := c.sess; s != nil {
		c.sess = nil
		c.gen++
		go s.stop()
	}
	c.status = wasmclient.StateInfo{State: wasmclient.Disconnected}
}

// OnDismount stops the client.
func (c *Chat) OnDismount() {
	if c.stopTicker != nil {
		c.stopTicker()
	}
	if c.onHide != nil {
		app.Window().Call("removeEventListener", "pagehide", c.onHide)
		c.onHide.Release()
		c.onHide = nil
	}
	if s := c.sess; s != nil {
		c.sess = nil
		go s.stop()
	}
}

// events returns the session callbacks, which move everything onto the
// UI goroutine.
func (c *Chat) events(ctx app.Context, gen int) events {
	return events{
		state: func(info wasmclient.StateInfo) {
			ctx.Dispatch(func(ctx app.Context) {
				if gen != c.gen {
					return
				}
				if c.framed && errors.Is(info.LastError, errNoToken) && c.creds == nil && !c.noFrameToken {
					c.noFrameToken = true // the page gives no token: log in as before
					c.connect(ctx)
					return
				}
				c.status = info
				c.now = time.Now()
				if info.State == wasmclient.Disconnected && errors.Is(info.LastError, wasmclient.ErrSessionEnded) && !c.framed {
					c.checkLogin(ctx, gen)
				}
				if info.State == wasmclient.Connected {
					// Rooms whose join failed (the session ended
					// meanwhile, a timeout) are joined again; the
					// others are joined already and nothing happens.
					for _, r := range c.order {
						c.join(ctx, r)
					}
				}
			})
		},
		user: func(name string) {
			ctx.Dispatch(func(ctx app.Context) {
				if gen != c.gen {
					return
				}
				first := c.user == ""
				c.user = name
				c.loginForm, c.loggingIn, c.loginErr = false, false, ""
				if first && !c.framed {
					// The rooms of the last visit come back, with
					// what was said there meanwhile as unread.
					for _, r := range c.restore(loadRooms(name)) {
						c.join(ctx, r)
					}
					c.saveRooms()
				}
			})
		},
		message: func(room string, m Message) {
			ctx.Dispatch(func(ctx app.Context) {
				if gen != c.gen {
					return
				}
				st := c.rooms[room]
				if st == nil {
					return
				}
				follow := room == c.room && (atBottom() || m.User == c.user)
				n := st.add(m)
				switch {
				case room != c.room:
					st.countUnread(c.user)
				case st.markSeen():
					c.saveRooms()
				}
				if n > 0 && follow {
					scrollDown(ctx)
				}
			})
		},
		history: func(room string, msgs []Message, older, more bool) {
			ctx.Dispatch(func(ctx app.Context) {
				if gen != c.gen {
					return
				}
				st := c.rooms[room]
				if st == nil {
					return
				}
				if older {
					anchor := fromBottom()
					st.addOlder(msgs, more)
					if room == c.room {
						keepFromBottom(ctx, anchor)
					}
					return
				}
				follow := room == c.room && (!st.loaded || atBottom())
				if !st.loaded || len(st.msgs) == 0 {
					st.more = more
				}
				st.add(msgs...)
				// What a room held when it was joined counts as seen;
				// a room restored from the last visit, or one that
				// fetches its history again after a gap, counts what
				// came since.
				if room == c.room || (!st.loaded && !st.restored) {
					if st.markSeen() {
						c.saveRooms()
					}
				} else {
					st.countUnread(c.user)
				}
				st.loaded = true
				st.err = ""
				if follow {
					scrollDown(ctx)
				}
			})
		},
		members: func(room string, members []string) {
			ctx.Dispatch(func(ctx app.Context) {
				if gen != c.gen {
					return
				}
				if st := c.rooms[room]; st != nil {
					st.setMembers(members)
				}
			})
		},
		roomError: func(room string, err error) {
			ctx.Dispatch(func(ctx app.Context) {
				if gen != c.gen {
					return
				}
				if st := c.rooms[room]; st != nil {
					st.err = reason(err)
				}
			})
		},
		loginRequired: func(room string) {
			ctx.Dispatch(func(ctx app.Context) {
				if gen != c.gen {
					return
				}
				if c.framed {
					c.needLogin()
					return
				}
				if c.user != "" {
					// This page was logged in: say that the login
					// ended rather than leave.
					c.endLoggedOut()
					return
				}
				if room == "" {
					room = c.room
				}
				c.toLogin(ctx, room)
			})
		},
	}
}

// checkLogin asks the server whether the page's login still stands after
// the server ended the session: when it does not, the page shows that it
// was logged out (else the session was ended by itself, by an admin, and
// the page offers to reconnect as before).
func (c *Chat) checkLogin(ctx app.Context, gen int) {
	ctx.Async(func() {
		pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stands, known := loginStands(pctx)
		if !known || stands {
			return
		}
		ctx.Dispatch(func(ctx app.Context) {
			if gen == c.gen {
				c.endLoggedOut()
			}
		})
	})
}

// endLoggedOut stops the session and shows the logged-out state.
func (c *Chat) endLoggedOut() {
	c.loggedOut = true
	if s := c.sess; s != nil {
		c.sess = nil
		c.gen++
		go s.stop()
	}
	c.status = wasmclient.StateInfo{State: wasmclient.Disconnected}
}

// loginStands asks /login whether the browser's login cookie still logs
// in: with redirects not followed, a logged-in browser gets a redirect
// (an "opaqueredirect" response) and one without a login gets the form
// (200). known is false when the server could not be asked.
func loginStands(ctx context.Context) (stands, known bool) {
	type result struct{ stands, known bool }
	done := make(chan result, 1)
	report := func(r result) {
		select {
		case done <- r:
		default:
		}
	}
	then := app.FuncOf(func(_ app.Value, args []app.Value) any {
		switch r := args[0]; {
		case r.Get("type").String() == "opaqueredirect":
			report(result{stands: true, known: true})
		case r.Get("ok").Bool():
			report(result{stands: false, known: true})
		default:
			report(result{})
		}
		return nil
	})
	catch := app.FuncOf(func(app.Value, []app.Value) any {
		report(result{})
		return nil
	})
	opts := map[string]any{"method": "HEAD", "redirect": "manual", "credentials": "same-origin", "cache": "no-store"}
	app.Window().Call("fetch", "/login", opts).Call("then", then).Call("catch", catch)
	select {
	case r := <-done:
		then.Release()
		catch.Release()
		return r.stands, r.known
	case <-ctx.Done():
		return false, false // the callbacks may still run: not released
	}
}

// toLogin leaves for the login page, which leads back to room.
func (c *Chat) toLogin(ctx app.Context, room string) {
	if c.redirecting {
		return
	}
	c.redirecting = true
	page := "/chat/"
	if u := ctx.Page().URL(); u != nil && strings.HasSuffix(u.Path, "/") {
		page = u.Path
	}
	app.Window().Get("location").Call("replace", loginURL(page, room))
}

// open makes room the current room, joining it if needed.
func (c *Chat) open(ctx app.Context, room string) {
	st := c.rooms[room]
	if st == nil {
		st = newRoomState(room)
		c.rooms[room] = st
		c.order = append(c.order, room)
	}
	st.markSeen()
	c.room = room
	c.joinErr = ""
	c.saveRooms()
	ctx.Page().SetTitle(room + " · bayeux chat")
	if c.sess != nil {
		c.join(ctx, room)
		scrollDown(ctx)
	}
}

// join starts joining room unless that is under way.
func (c *Chat) join(ctx app.Context, room string) {
	st := c.rooms[room]
	if st == nil || st.joining || c.sess == nil {
		return
	}
	st.joining = true
	st.err = ""
	s := c.sess
	ctx.Async(func() {
		s.join(room)
		ctx.Dispatch(func(ctx app.Context) { st.joining = false })
	})
}

// leave forgets room; when it was the current one, another opens.
func (c *Chat) leave(ctx app.Context, room string) {
	if len(c.order) <= 1 {
		return
	}
	c.order = slices.DeleteFunc(c.order, func(r string) bool { return r == room })
	delete(c.rooms, room)
	c.saveRooms()
	if s := c.sess; s != nil {
		if j := s.forget(room); j != nil { // now, so that a join that follows starts afresh
			ctx.Async(func() { s.unsubscribe(j) })
		}
	}
	if room == c.room {
		ctx.NavigateTo(roomURL(ctx.Page().URL(), c.order[0]))
	}
}

func (c *Chat) onSend(ctx app.Context, e app.Event) {
	e.PreventDefault()
	in := app.Window().GetElementByID(inputID)
	if !in.Truthy() {
		return
	}
	text := strings.TrimSpace(in.Get("value").String())
	switch {
	case text == "":
		return
	case utf8.RuneCountInString(text) > maxText:
		c.notice = "That message is too long (at most " + strconv.Itoa(maxText) + " characters)."
		return
	case c.sess == nil:
		return
	}
	in.Set("value", "")
	c.notice = ""
	s, room := c.sess, c.room
	ctx.Async(func() {
		err := s.send(room, text)
		if err == nil || isLoginRequired(err) {
			return
		}
		ctx.Dispatch(func(ctx app.Context) {
			c.notice = "Not sent (" + reason(err) + ")."
			if in := app.Window().GetElementByID(inputID); in.Truthy() && in.Get("value").String() == "" {
				in.Set("value", text)
			}
		})
	})
}

func (c *Chat) onJoin(ctx app.Context, e app.Event) {
	e.PreventDefault()
	in := app.Window().GetElementByID(joinInputID)
	if !in.Truthy() {
		return
	}
	name := strings.TrimSpace(in.Get("value").String())
	if name == "" {
		return
	}
	if !ValidRoom(name) {
		c.joinErr = "Room names are 1 to 64 letters, digits or - _ . ! ~ ( ) $ @."
		return
	}
	in.Set("value", "")
	c.joinErr = ""
	ctx.NavigateTo(roomURL(ctx.Page().URL(), name))
}

func (c *Chat) onReconnect(ctx app.Context, e app.Event) {
	if s := c.sess; s != nil {
		ctx.Async(func() { s.reconnect() })
	}
}

// onLogout lets the browser follow the link: go-app would otherwise
// route /logout (or /login) inside the app.
func (c *Chat) onLogout(ctx app.Context, e app.Event) {
	e.StopImmediatePropagation()
}

// statusInfo is the state to show: "connecting" until the client runs.
func (c *Chat) statusInfo() wasmclient.StateInfo {
	if !c.started {
		return wasmclient.StateInfo{State: wasmclient.Connecting}
	}
	return c.status
}

// Render draws the page.
func (c *Chat) Render() app.UI {
	c.init()
	room := c.room
	if room == "" {
		room = DefaultRoom
	}
	st := c.rooms[room]
	if st == nil {
		st = newRoomState(room)
	}
	info := c.statusInfo()
	now := c.now
	if now.IsZero() {
		now = time.Now()
	}
	stopped := c.started && info.State == wasmclient.Disconnected && !c.loginForm && !c.loggedOut
	label := statusText(info, now)
	switch {
	case c.loginForm:
		label = "not logged in"
	case c.loggedOut:
		label = "logged out"
	}
	appClass := "chat-app"
	if c.framed {
		appClass += " compact"
	}

	return app.Div().Class(appClass).Body(
		app.Header().Class("chat-top").Body(
			app.If(!c.framed, func() app.UI {
				return app.H1().Class("chat-title").Text("bayeux chat")
			}),
			app.Span().
				Class("chat-status", "state-"+info.State.String()).
				DataSet("testid", "chat-status").
				DataSet("state", info.State.String()).
				Aria("live", "polite").
				Title("%s", reason(info.LastError)).
				Text(label),
			app.If(stopped, func() app.UI {
				return app.Button().Class("chat-reconnect").Type("button").Text("Reconnect").OnClick(c.onReconnect)
			}),
			app.Div().Class("chat-account").Body(
				app.If(c.user != "", func() app.UI {
					return app.Span().Class("chat-user").Title("Logged in as %s", c.user).Text(c.user)
				}),
				app.If(!c.framed, func() app.UI {
					return app.A().Class("chat-logout").Href("/logout").OnClick(c.onLogout).Text("Log out")
				}),
			),
		),
		app.If(!c.framed, func() app.UI { return c.renderRooms() }),
		app.Main().Class("chat-main").Body(
			app.H2().Class("chat-room").DataSet("testid", "chat-room").Text(room),
			c.renderMessages(st, now),
			app.If(c.notice != "", func() app.UI {
				return app.P().Class("chat-notice").Aria("live", "assertive").Text(c.notice)
			}),
			app.If(c.loginForm, func() app.UI { return c.renderLogin() }),
			app.If(c.loggedOut, func() app.UI { return c.renderLoggedOut(room) }),
			app.Form().Class("chat-composer").Hidden(c.loginForm || c.loggedOut).OnSubmit(c.onSend).Body(
				app.Input().
					ID(inputID).
					Class("chat-input").
					DataSet("testid", "chat-input").
					Type("text").
					Name("chat").
					Placeholder("Message %s", room).
					MaxLength(maxText).
					AutoComplete(false).
					Attr("enterkeyhint", "send").
					Aria("label", "Message"),
				app.Button().
					Class("chat-send").
					DataSet("testid", "chat-send").
					Type("submit").
					Text("Send"),
			),
		),
		c.renderMembers(st),
	)
}

// renderLogin is the frame's own login form (a cross-site frame cannot
// use the login page: its cookie would not come back).
func (c *Chat) renderLogin() app.UI {
	return app.Form().Class("chat-login").OnSubmit(c.onLogin).Body(
		app.Input().ID(loginUserID).Class("chat-login-user").DataSet("testid", "login-user").
			Type("text").Name("user").Placeholder("User name").
			Attr("autocomplete", "username").Aria("label", "User name"),
		app.Input().ID(loginPasswordID).Class("chat-login-password").DataSet("testid", "login-password").
			Type("password").Name("password").Placeholder("Password").
			Attr("autocomplete", "current-password").Aria("label", "Password"),
		app.Button().Class("chat-login-submit").DataSet("testid", "login-submit").Type("submit").
			Disabled(c.loggingIn).Text("Log in"),
		app.If(c.loginErr != "", func() app.UI {
			return app.P().Class("chat-error").DataSet("testid", "login-error").Aria("live", "assertive").Text(c.loginErr)
		}),
	)
}

// renderLoggedOut says that the login ended and links to the login page,
// which leads back to room.
func (c *Chat) renderLoggedOut(room string) app.UI {
	page := "/chat/"
	if u := app.Window().URL(); u != nil && strings.HasSuffix(u.Path, "/") {
		page = u.Path
	}
	return app.P().Class("chat-notice", "chat-logged-out").DataSet("testid", "chat-logged-out").Aria("live", "assertive").Body(
		app.Text("You were logged out. "),
		app.A().Href(loginURL(page, room)).DataSet("testid", "chat-login-link").OnClick(c.onLogout).Text("Log in again"),
	)
}

func (c *Chat) renderRooms() app.UI {
	return app.Nav().Class("chat-rooms").Aria("label", "Rooms").Body(
		app.Ul().Class("chat-roomlist").Body(
			app.Range(c.order).Slice(func(i int) app.UI {
				r := c.order[i]
				st := c.rooms[r]
				li := app.Li().Class("chat-roomitem").DataSet("room", r)
				a := app.A().Class("chat-roomlink").Href("?%s", url.Values{"room": {r}}.Encode()).Text(r)
				if r == c.room {
					li = li.Class("current")
					a = a.Aria("current", "page")
				}
				return li.Body(
					a,
					app.If(st != nil && st.unread > 0 && r != c.room, func() app.UI {
						return app.Span().
							Class("chat-unread").
							DataSet("testid", "chat-unread").
							Title("%d unread", st.unread).
							Aria("label", strconv.Itoa(st.unread)+" unread").
							Text(unreadLabel(st.unread))
					}),
					app.If(len(c.order) > 1, func() app.UI {
						return app.Button().
							Class("chat-leave").
							Type("button").
							Title("Leave %s", r).
							Aria("label", "Leave "+r).
							Text("×").
							OnClick(func(ctx app.Context, e app.Event) { c.leave(ctx, r) }, app.EventScope(r))
					}),
				)
			}),
		),
		app.Form().Class("chat-join").OnSubmit(c.onJoin).Body(
			app.Input().
				ID(joinInputID).
				Type("text").
				Name("room").
				Placeholder("Room name").
				MaxLength(MaxRoomLen).
				Title("1 to 64 letters, digits or - _ . ! ~ ( ) $ @").
				AutoComplete(false).
				Spellcheck(false).
				Aria("label", "Room name"),
			app.Button().Type("submit").Title("Join or create this room").Text("Join"),
		),
		app.If(c.joinErr != "", func() app.UI {
			return app.P().Class("chat-error").Aria("live", "assertive").Text(c.joinErr)
		}),
	)
}

func (c *Chat) renderMessages(st *roomState, now time.Time) app.UI {
	msgs := st.msgs
	var empty string
	switch {
	case len(msgs) > 0:
	case st.err != "":
		empty = "Could not open this room: " + st.err
	case !st.loaded:
		empty = "Loading messages…"
	default:
		empty = "No messages yet. Say hello!"
	}
	return app.Ol().
		ID(messagesID).
		Class("chat-messages").
		DataSet("testid", "chat-messages").
		Aria("live", "polite").
		Aria("relevant", "additions").
		OnScroll(c.onScroll).
		Body(
			app.If(empty != "", func() app.UI {
				return app.Li().Class("chat-empty").Text(empty)
			}),
			app.If(len(msgs) > 0 && st.loaded, func() app.UI {
				if !st.more {
					return app.Li().Class("chat-beginning").DataSet("testid", "chat-beginning").
						Text("This is the beginning of " + st.name + ".")
				}
				label := "Load older messages"
				if st.older {
					label = "Loading older messages…"
				}
				return app.Li().Class("chat-older").Body(
					app.Button().Type("button").DataSet("testid", "chat-older").Disabled(st.older).Text(label).
						OnClick(func(ctx app.Context, e app.Event) { c.loadOlder(ctx, st.name) }),
				)
			}),
			app.Range(msgs).Slice(func(i int) app.UI {
				m := msgs[i]
				li := app.Li().Class("chat-message").DataSet("testid", "chat-message")
				if c.user != "" && m.User == c.user {
					li = li.Class("own")
				}
				var full string
				if !m.at.IsZero() {
					full = m.at.Local().Format("Mon Jan 2 2006 15:04:05")
				}
				return li.Body(
					app.Div().Class("chat-meta").Body(
						app.Span().Class("chat-author").Text(m.User),
						app.Time().Class("chat-time").DateTime("%s", m.Time).Title("%s", full).Text(formatTime(m.at, now)),
					),
					chatText(m.spans),
				)
			}),
		)
}

// chatText renders a message's text: plain text as text nodes, http(s)
// URLs as links that open in a new tab with neither the opener nor a
// referrer, and that search engines do not follow (go-app leaves links
// with target _blank to the browser). Nothing becomes HTML.
func chatText(spans []span) app.UI {
	p := app.P().Class("chat-text")
	if len(spans) == 1 && !spans[0].link {
		return p.Text(spans[0].text)
	}
	nodes := make([]app.UI, len(spans))
	for i, s := range spans {
		if !s.link {
			nodes[i] = app.Text(s.text)
			continue
		}
		nodes[i] = app.A().
			Class("chat-link").
			Href("%s", s.text).
			Rel("noopener noreferrer nofollow").
			Target("_blank").
			Text(s.text)
	}
	return p.Body(nodes...)
}

func (c *Chat) renderMembers(st *roomState) app.UI {
	return app.Aside().Class("chat-members").DataSet("testid", "chat-members").Aria("label", "Members online").Body(
		app.H2().Class("chat-members-title").Text("Online ("+strconv.Itoa(len(st.members))+")"),
		app.Ul().Class("chat-memberlist").Body(
			app.Range(st.members).Slice(func(i int) app.UI {
				name := st.members[i]
				li := app.Li().Class("chat-member")
				if c.user != "" && name == c.user {
					li = li.Class("me")
				}
				return li.Text(name)
			}),
		),
	)
}

// onScroll loads older messages when the list is scrolled near its top.
func (c *Chat) onScroll(ctx app.Context, e app.Event) {
	if el := app.Window().GetElementByID(messagesID); el.Truthy() && el.Get("scrollTop").Float() < 80 {
		c.loadOlder(ctx, c.room)
	}
}

// loadOlder loads the page of room's history before its oldest message
// shown, unless one is on its way or there is none.
func (c *Chat) loadOlder(ctx app.Context, room string) {
	st := c.rooms[room]
	s := c.sess
	if st == nil || s == nil || st.older || !st.more {
		return
	}
	pos, ok := st.oldest()
	if !ok {
		return
	}
	st.older = true
	gen := c.gen
	ctx.Async(func() {
		if err := s.loadOlder(room, pos); err != nil {
			ctx.Dispatch(func(ctx app.Context) {
				if gen == c.gen {
					st.older = false
				}
			})
		}
	})
}

// fromBottom is how far the message list is scrolled from its end.
func fromBottom() float64 {
	el := app.Window().GetElementByID(messagesID)
	if !el.Truthy() {
		return 0
	}
	return el.Get("scrollHeight").Float() - el.Get("scrollTop").Float()
}

// keepFromBottom scrolls the list, after the next update, so that it is
// d from its end again: what the user looked at stays in place when older
// messages come in above it.
func keepFromBottom(ctx app.Context, d float64) {
	ctx.Defer(func(app.Context) {
		if el := app.Window().GetElementByID(messagesID); el.Truthy() {
			el.Set("scrollTop", el.Get("scrollHeight").Float()-d)
		}
	})
}

// atBottom reports whether the message list shows its end (or does not
// exist yet).
func atBottom() bool {
	el := app.Window().GetElementByID(messagesID)
	if !el.Truthy() {
		return true
	}
	return el.Get("scrollHeight").Float()-el.Get("scrollTop").Float()-el.Get("clientHeight").Float() < 48
}

// scrollDown shows the end of the message list after the next update.
func scrollDown(ctx app.Context) {
	ctx.Defer(func(app.Context) {
		if el := app.Window().GetElementByID(messagesID); el.Truthy() {
			el.Set("scrollTop", el.Get("scrollHeight"))
		}
	})
}
