package auth_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/bayeux-go/bayeux/server/auth"
)

// A browser logs in, is recognised by its cookie, and logs out: the same
// cookie, replayed, logs in nobody.
func ExampleLogins() {
	dir, _ := os.MkdirTemp("", "logins")
	defer os.RemoveAll(dir)
	store, err := auth.OpenFileLogins(filepath.Join(dir, "logins"), auth.LoginLimits{})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	logins, err := auth.NewLogins([][]byte{bytes.Repeat([]byte{1}, 32)}, store, 0)
	if err != nil {
		panic(err)
	}

	w := httptest.NewRecorder()
	if _, err := logins.Login(w, httptest.NewRequest(http.MethodPost, "/login", nil), "alice", "192.0.2.1"); err != nil {
		panic(err)
	}
	cookie := w.Result().Cookies()[0]
	with := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/chat/", nil)
		r.AddCookie(cookie)
		return r
	}
	fmt.Printf("logged in: %q\n", logins.User(with()))

	ended, ok, _ := logins.Logout(httptest.NewRecorder(), with())
	fmt.Println("logout ended a login of", ended.User, ok)
	fmt.Printf("the cookie replayed: %q\n", logins.User(with()))
	// Output:
	// logged in: "alice"
	// logout ended a login of alice true
	// the cookie replayed: ""
}
