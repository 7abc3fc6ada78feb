package jsapi

import (
	"context"
	"errors"
	"math"
	"sync"
)

// The page's getToken is reached through bayeux.js: connect's second
// argument is a function ask(n) that makes bayeux.js call getToken() and
// answer with the internal method token(n, token, error). A Promise
// returned by getToken is awaited there, on the page's side.

// errNoGetToken is the Token error of a connection with a token but no
// getToken, once the token was used.
var errNoGetToken = errors.New("bayeux: the token was used and there is no getToken to ask for a new one")

// tokenAsks are the getToken calls waiting for the page's answer.
type tokenAsks struct {
	mu      sync.Mutex
	next    int
	waiting map[int]chan tokenAnswer
}

type tokenAnswer struct {
	token string
	err   error
}

// tokenFunc is the client's Options.Token for a page that gave first (a
// token, may be "") and ask (getToken through bayeux.js, may be nil): the
// first call returns first, later ones ask the page.
func (a *API) tokenFunc(first string, ask Func) func(context.Context) (string, error) {
	var mu sync.Mutex
	used := first == ""
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		if !used {
			used = true
			mu.Unlock()
			return first, nil
		}
		mu.Unlock()
		if ask == nil {
			if first != "" {
				return first, nil // a fixed token: the session ends when it expires
			}
			return "", errNoGetToken
		}
		return a.asks.ask(ctx, ask)
	}
}

func (t *tokenAsks) ask(ctx context.Context, ask Func) (string, error) {
	ch := make(chan tokenAnswer, 1)
	t.mu.Lock()
	if t.waiting == nil {
		t.waiting = map[int]chan tokenAnswer{}
	}
	t.next++
	n := t.next
	t.waiting[n] = ch
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.waiting, n)
		t.mu.Unlock()
	}()
	ask(n)
	select {
	case r := <-ch:
		return r.token, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// token: (n, token, error) — bayeux.js's answer to ask(n). An answer
// nobody waits for any more is dropped.
func (a *API) token(args []any) (any, error) {
	f, ok := arg(args, 0).(float64)
	if !ok || f != math.Trunc(f) {
		return nil, errors.New("bayeux: token needs the number ask gave")
	}
	ans := tokenAnswer{}
	tok, _ := arg(args, 1).(string)
	msg, _ := arg(args, 2).(string)
	switch {
	case msg != "":
		ans.err = errors.New("bayeux: getToken failed: " + msg)
	case tok == "":
		ans.err = errors.New("bayeux: getToken gave no token (it must return a string, or a Promise of one)")
	default:
		ans.token = tok
	}
	a.asks.mu.Lock()
	ch := a.asks.waiting[int(f)]
	a.asks.mu.Unlock()
	if ch != nil {
		select {
		case ch <- ans:
		default:
		}
	}
	return nil, nil
}
